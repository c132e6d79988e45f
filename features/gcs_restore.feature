Feature: Google Cloud Storage procedures of the disaster-recovery developer guide
  The guide (runbook 004) backs up the asset, model and data buckets (GCS_SOURCE_BUCKETS) into a
  backup bucket (GCS_BACKUP_BUCKET), restores them into the original bucket or into another one
  (--target-bucket), and checks the critical files (GCS_CRITICAL_FILES) afterwards. These drills do
  it for real against a throwaway fake-gcs-server: every object and version is deleted as the
  disaster, and the restored bucket is compared object by object (name, size, md5, crc32c, content
  type, metadata) with its state at the backup.

  @tier:critical
  Scenario: The asset bucket is restored from a local archive, with RPO markers
    Given the GCS store "eyewearml-assets"
    And "eyewearml-assets" is seeded with 300 objects
    And writes to "eyewearml-assets" are recorded every 0.2 seconds
    And 1 second passes
    And a backup of "eyewearml-assets" is taken
    And 1 second passes
    When "eyewearml-assets" is lost
    And "eyewearml-assets" is restored from its latest backup
    Then "eyewearml-assets" matches its state at the backup
    And "eyewearml-assets" holds 300 objects
    And "eyewearml-assets" holds the object "config/production.json"
    And the recovery time is within 30 minutes
    And the data loss is at most 1 hour

  @tier:critical
  Scenario: The model bucket is restored from the backup bucket (server-side copies)
    Given the GCS store "eyewearml-models"
    And "eyewearml-models" is seeded with 200 objects
    And a backup of "eyewearml-models" is taken into the bucket "eyewearml-backups"
    When "eyewearml-models" is lost
    And "eyewearml-models" is restored from its latest backup
    Then "eyewearml-models" matches its state at the backup
    And "eyewearml-models" holds the object "models/face-analysis-v2.0/model.pb"
    And "eyewearml-models" holds the object "config/production.json"
    And the recovery time is within 30 minutes

  @tier:important
  Scenario: The data bucket is restored into another bucket (test restore)
    Given the GCS store "eyewearml-data"
    And "eyewearml-data" is seeded with 200 objects
    And a backup of "eyewearml-data" is taken
    When "eyewearml-data" is restored from its latest backup into "eyewearml-data-restored"
    Then "eyewearml-data-restored" matches the state of "eyewearml-data" at the backup
    And "eyewearml-data-restored" holds 200 objects
    And "eyewearml-data" holds 200 objects

  @tier:critical
  Scenario: The asset bucket is brought back to the time of its backup from object versions
    Given the GCS store "eyewearml-assets"
    And "eyewearml-assets" is seeded with 200 objects
    And a backup of "eyewearml-assets" is taken
    And writes to "eyewearml-assets" are recorded every 0.2 seconds
    And 1 second passes
    When writes to "eyewearml-assets" stop
    And "eyewearml-assets" is restored from its object versions to the time of its latest backup
    Then "eyewearml-assets" matches its state at the backup
    And "eyewearml-assets" holds 200 objects
    And the recovery time is within 30 minutes
    And the data loss is at most 1 hour
