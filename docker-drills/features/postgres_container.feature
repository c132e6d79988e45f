Feature: PostgreSQL restore into a throwaway container of the production image
  The runbook restores the user database inside the postgres container it runs in production.
  This drill starts a throwaway container of that image, fills it, backs it up with pg_dump,
  drops the database and restores it, then verifies every table against the state at the backup.

  @tier:critical
  Scenario: The user database in a container is restored from its latest backup
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 2000 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
    And "userdb" holds 2000 rows
    And the recovery time is within 30 minutes
