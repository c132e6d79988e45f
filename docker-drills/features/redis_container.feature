Feature: Redis restore into a throwaway container of the production image
  The runbook stops the redis container, copies the RDB snapshot to /data/dump.rdb and starts it
  again. This drill does the same with a throwaway container: BGSAVE, copy dump.rdb, FLUSHALL as
  the disaster, restart the container on the copy, and compare every key with the backup.

  @tier:important
  Scenario: The cache in a container is restored from its latest RDB snapshot
    Given the Redis store "cache"
    And "cache" is seeded with 1200 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup
    And "cache" holds 1200 keys
    And the recovery time is within 2 hours

  @tier:important
  Scenario: The session store in a container is restored from its RDB snapshot and AOF folder
    Given the Redis store "sessions"
    And "sessions" is seeded with 600 keys
    And a backup of "sessions" is taken
    When "sessions" is lost
    And "sessions" is restored from its latest backup
    Then "sessions" matches its state at the backup
    And "sessions" holds 600 keys
