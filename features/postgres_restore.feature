Feature: PostgreSQL restore procedures of the seed runbook
  The runbook restores the user database and the order database from their latest backups
  (dropdb, createdb, restore, then SELECT COUNT(*)). These drills restore for real and verify
  every table's row count and content, the schema and the sequences, against their targets.

  @tier:critical
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

  @tier:important
  Scenario: The order database is restored from its latest backup
    Given the PostgreSQL store "orderdb"
    And "orderdb" is seeded with 8000 rows
    And a backup of "orderdb" is taken
    When "orderdb" is lost
    And "orderdb" is restored from its latest backup
    Then "orderdb" matches its state at the backup
    And "orderdb" holds 3200 rows in "orders"
    And the recovery time is within 2 hours

  @tier:critical
  Scenario: The user database is restored from a runbook-style gzip'd SQL dump found by glob
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 2000 rows
    And a gzip'd SQL dump of "userdb" is saved as "backups/postgres/userdb_{timestamp}.sql.gz"
    And the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
    And "userdb" holds 400 rows in "users"
