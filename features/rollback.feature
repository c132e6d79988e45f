Feature: Rollback when a restore fails (the runbook's "Rollback Procedures")
  Before a restore overwrites the user database, drill keeps a safety copy of it. A restore that
  fails for real (a corrupt backup, the server killed half-way, a full disk) is rolled back from that
  copy, and the rollback is verified against the fingerprint taken right before the restore.

  Background:
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 5000 rows
    And a backup of "userdb" is taken
    And SQL is run on "userdb":
      """
      DELETE FROM order_items WHERE id % 5 = 0;
      """
    And the rollback policy is on-failure

  Scenario: A corrupt backup is refused and the database is left as it was
    When the restore of "userdb" fails because the backup is corrupt
    Then "userdb" is rolled back to its state before the restore

  Scenario: The server is killed half-way through the restore
    When the restore of "userdb" fails because the server is killed
    Then "userdb" is rolled back to its state before the restore

  Scenario: The restore runs past its time limit
    When the restore of "userdb" fails because it times out
    Then "userdb" is rolled back to its state before the restore

  Scenario: A restore that succeeds is rolled back on purpose (a test restore over the real store)
    Given the rollback policy is always
    When "userdb" is restored from its latest backup
    And "userdb" is rolled back
    Then "userdb" is rolled back to its state before the restore
