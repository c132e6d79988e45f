@tier:critical
Feature: PostgreSQL restore procedures of the seed runbook
  The runbook restores the user database and the order database from their latest backups,
  then verifies them with SELECT COUNT(*). These drills restore for real and verify content.

  Scenario: The user database is restored from its latest backup
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 5000 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
    And "userdb" holds 5000 rows
    And "userdb" holds 1000 rows in "users"
    And the recovery time is within 30 minutes
    And the data loss is at most 1 hour
