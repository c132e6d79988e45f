Feature: Full-system restoration (the runbook's full-restore.sh, verified and measured)
  Every store is lost; the whole system is restored from the latest backups in the order that
  drill.toml gives (stages, depends_on), the independent stores at the same time; each store is
  verified against its backup and gets its own recovery time; then the health checks run.

  @tier:standard
  Scenario: PostgreSQL, Redis and MongoDB come back together and the system is healthy
    Given the PostgreSQL store "userdb"
    And the Redis store "cache"
    And the MongoDB store "notifydb"
    And "userdb" is seeded with 2000 rows
    And "cache" is seeded with 1000 keys
    And "notifydb" is seeded with 1000 documents
    And a backup of "userdb" is taken
    And a backup of "cache" is taken
    And a backup of "notifydb" is taken
    And a health service for the stores is running
    When "userdb" is lost
    And "cache" is lost
    And "notifydb" is lost
    And the whole system is restored
    Then the HTTP endpoint "{health}/health" answers 200
    And the query "SELECT count(*) FROM users" on "userdb" returns "400"
    And the recovery time of "userdb" is within 30 minutes
    And the recovery time of "cache" is within 30 minutes
    And the recovery time of "notifydb" is within 30 minutes
    And the recovery time is within 4 hours
