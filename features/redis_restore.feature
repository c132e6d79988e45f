Feature: Redis restore procedure of the seed runbook
  The runbook restores the cache from its latest RDB snapshot: stop redis-server, put the
  snapshot in place of dump.rdb, start the server again and check the key count. This drill
  does it for real (BGSAVE, copy dump.rdb, FLUSHALL as the disaster, restart on the copy) and
  verifies every key's type, value and expiry against the state at the backup.

  @tier:important
  Scenario: The cache is restored from its latest RDB snapshot
    Given the Redis store "cache"
    And "cache" is seeded with 3000 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup
    And "cache" holds 3000 keys
    And "cache" holds 3000 keys in "db0"
    And the recovery time is within 2 hours
    And the data loss is at most 1 hour
