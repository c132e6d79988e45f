Feature: Point-in-time recovery of PostgreSQL from its WAL archive
  The runbook's PITR procedure as a drill: the store archives every WAL segment; a base backup is
  taken; writes go on until the disaster. Recovery lays the base backup down and replays the archived
  WAL up to the point in time asked for. The markers written before that point are all back and none
  written after it: the data loss is measured in seconds, not hours.

  @tier:critical
  Scenario: The user database is recovered to just before it was dropped
    Given the PostgreSQL store "userdb" archiving its WAL
    And "userdb" is seeded with 2000 rows
    And writes to "userdb" are recorded every 200 milliseconds
    And a base backup of "userdb" is taken
    And 2 seconds pass
    When "userdb" is lost
    And "userdb" is restored to the point in time just before the disaster
    Then "userdb" matches its state at the backup
    And "userdb" holds every marker written before the point in time and none after it
    And the data loss is at most 1 second

  @tier:critical
  Scenario: The user database is recovered to a moment before a bad change
    Given the PostgreSQL store "userdb" archiving its WAL
    And "userdb" is seeded with 2000 rows
    And a base backup of "userdb" is taken
    And writes to "userdb" are recorded every 200 milliseconds
    And 3 seconds pass
    When "userdb" is lost
    And "userdb" is restored to the point in time 2 seconds before the disaster
    Then "userdb" holds every marker written before the point in time and none after it
    And "userdb" holds 2000 rows
