@nightly @rpo:25h
Feature: Nightly: the Firestore exports production made restore
  The developer guide's firestore_backup.sh runs `gcloud firestore export` into the backup bucket,
  one folder per date. Each night the newest export folder is imported into a throwaway emulator,
  restored into a throwaway project and counted.

  @rto:2h
  Scenario: The newest managed export restores
    Given the Firestore store "eyewearml"
    And the latest backup of "eyewearml" in "backups/firestore/*/"
    When "eyewearml" is restored from its latest backup
    Then "eyewearml" holds 130 documents
    And "eyewearml" holds 40 documents in "users"
    And "eyewearml" holds 80 documents in "users/*/sessions"
    And the recovery time is within 2 hours
