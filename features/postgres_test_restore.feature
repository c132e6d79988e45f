Feature: Test-mode restore of PostgreSQL: production stays untouched
  The runbook's test mode restores a backup somewhere else to prove it works, without touching
  the original. The restored copy must equal the backup, and the original must still be intact.

  @tier:standard
  Scenario: The user database is restored into a new database while the original stays untouched
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 3000 rows
    And a backup of "userdb" is taken
    When "userdb" is restored from its latest backup into "userdb_restored"
    Then "userdb_restored" matches the state of "userdb" at the backup
    And "userdb_restored" holds 3000 rows
    And "userdb" matches its state at the backup
    And the recovery time is within 4 hours
