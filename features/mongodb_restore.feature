Feature: MongoDB restore procedure of the seed runbook
  The runbook restores the notification database (notifydb) from its latest mongodump and checks
  the notifications collection. This drill restores for real and verifies every collection's
  document count, content and indexes against the state at the backup.

  @tier:important
  Scenario: The notification database is restored from its latest backup
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 2000 documents
    And a backup of "notifydb" is taken
    When "notifydb" is lost
    And "notifydb" is restored from its latest backup
    Then "notifydb" matches its state at the backup
    And "notifydb" holds 2000 documents
    And "notifydb" holds 1200 documents in "notifications"
    And the recovery time is within 2 hours
    And the data loss is at most 1 hour
