@nightly @rpo:25h
Feature: Nightly: the MongoDB backups production made restore
  The runbook's backups of notifydb are a tar.gz of a mongodump folder (notifydb_*.tar.gz); other
  cron jobs keep the mongodump folder itself or write `mongodump --archive`, gzip'd or not. Each night
  the newest of each is restored into a throwaway server and counted.

  @rto:2h
  Scenario Outline: The newest notifydb backup restores (<made by>)
    Given the MongoDB store "notifydb"
    And the latest backup of "notifydb" in "<glob>"
    When "notifydb" is restored from its latest backup
    Then "notifydb" holds 300 documents
    And "notifydb" holds 200 documents in "notifications"
    And the recovery time is within 2 hours

    Examples:
      | made by                      | glob                                   |
      | tar -czf of a mongodump folder | backups/mongodb/notifydb_*.tar.gz    |
      | a mongodump folder           | backups/mongodb/dump_*/                |
      | mongodump --archive          | backups/mongodb/notifydb_*.archive     |
      | mongodump --archive --gzip   | backups/mongodb/notifydb_*.archive.gz  |
