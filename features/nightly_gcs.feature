@nightly @rpo:25h
Feature: Nightly: the dated bucket copies production made restore
  The developer guide's gcs_backup.sh copies each bucket into the backup bucket under a dated
  prefix (eyewearml-backups/models/2025-03-25/...). Each night the newest copy is restored into a
  scratch bucket next to the live one (removed afterwards: in place would overwrite production),
  counted, and its critical files checked.

  @rto:2h
  Scenario: The newest copy of the models bucket restores
    Given the GCS store "models"
    And the latest backup of "models" in the bucket "eyewearml-backups" under "models/*/"
    When "models" is restored from its latest backup into "eyewearml-models-nightly"
    Then "eyewearml-models-nightly" holds 25 objects
    And "eyewearml-models-nightly" holds the object "models/face-analysis-v2.0/model.pb"
    And the recovery time is within 2 hours
