@nightly @rpo:25h
Feature: Nightly: the Redis backups production made restore
  The runbook copies dump.rdb after a save (backups/redis/dump_*.rdb); servers with the AOF on are
  backed up as a copy of appendonlydir/. Each night the newest of each is loaded by a throwaway
  server and counted.

  @rto:2h
  Scenario: The newest RDB file loads
    Given the Redis store "cache"
    And the latest backup of "cache" in "backups/redis/dump_*.rdb"
    When "cache" is restored from its latest backup
    Then "cache" holds 1000 keys
    And the recovery time is within 2 hours

  @rto:2h
  Scenario: The newest AOF folder loads
    Given the Redis store "cache"
    And the latest backup of "cache" in "backups/redis/appendonlydir_*/"
    When "cache" is restored from its latest backup
    Then "cache" holds 1001 keys
    And the recovery time is within 2 hours
