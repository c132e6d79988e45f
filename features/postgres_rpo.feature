Feature: Real data loss of PostgreSQL, measured with a continuous writer
  A writer records a sequenced, timestamped marker every half second while the drill runs. The
  backup is taken while it writes; writes go on until the disaster. After the restore, the newest
  marker that survived is the real recovery point: the data loss is measured, not assumed.

  @rto:30m @rpo:1h
  Scenario: The user database loses only what was written after its backup
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 2000 rows
    And writes to "userdb" are recorded every 500 milliseconds
    And 2 seconds pass
    And a backup of "userdb" is taken
    When 3 seconds pass
    And "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
    And the data loss is at most 10 seconds
