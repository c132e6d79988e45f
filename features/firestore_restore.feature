Feature: Firestore restore procedures of the seed runbook
  The runbook backs up the collections users, products and sessions of the Firestore project and
  restores them from a given date, into the same project or into a different one
  (--target-project). These drills stream every collection recursively (subcollections included)
  into a typed backup file, delete everything, restore with a bulk writer and verify, per
  collection path, the document count, the content and the type of every field.

  @tier:important
  Scenario: The Firestore project is restored from its latest backup
    Given the Firestore store "eyewearml"
    And "eyewearml" is seeded with 600 documents
    And writes to "eyewearml" are recorded every 200 milliseconds
    And a backup of "eyewearml" is taken
    And 1 second passes
    When "eyewearml" is lost
    And "eyewearml" is restored from its latest backup
    Then "eyewearml" matches its state at the backup
    And "eyewearml" holds 600 documents
    And "eyewearml" holds 150 documents in "users"
    And "eyewearml" holds 90 documents in "products"
    And "eyewearml" holds 240 documents in "users/*/sessions"
    And the recovery time is within 2 hours
    And the data loss is at most 1 hour

  @tier:important
  Scenario: The Firestore project is restored into a different project
    Given the Firestore store "eyewearml"
    And "eyewearml" is seeded with 300 documents
    And a backup of "eyewearml" is taken
    When "eyewearml" is restored from its latest backup into "eyewearml-restored"
    Then "eyewearml-restored" matches the state of "eyewearml" at the backup
    And "eyewearml-restored" holds 300 documents
    And "eyewearml-restored" holds 120 documents in "users/*/sessions"
    And "eyewearml" holds 300 documents
