@nightly @rpo:25h
Feature: Nightly: the PostgreSQL backups production made restore
  The seed runbook's cron job writes `pg_dump | gzip` to backups/postgres/userdb_YYYYmmdd_HHMMSS.sql.gz,
  and a base backup (base_backup_*.tar.gz) with the WAL archived into backups/postgres/wal/. Each night
  the newest of each is restored into a throwaway cluster, counted, and its sha256 kept in the report.

  @rto:30m
  Scenario: The newest gzip'd dump of the user database restores
    Given the PostgreSQL store "userdb"
    And the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"
    When "userdb" is restored from its latest backup
    Then "userdb" holds 550 rows
    And "userdb" holds 50 rows in "accounts"
    And the recovery time is within 30 minutes

  @rto:30m
  Scenario: The newest base backup replays the archived WAL
    Given the PostgreSQL store "userdb"
    And the latest base backup of "userdb" in "backups/postgres/base_backup_*.tar.gz" with the WAL archive "backups/postgres/wal/"
    When "userdb" is restored from its latest backup
    Then "userdb" holds 600 rows
    And "userdb" holds 100 rows in "accounts"
    And the recovery time is within 30 minutes
