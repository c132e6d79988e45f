Feature: MongoDB restore into a throwaway container of the production image
  The runbook restores the notification database with mongorestore inside the mongodb container.
  This drill starts a throwaway container of that image, fills it, backs it up in mongodump's
  layout, drops the database and restores it, then compares every collection and index.

  @tier:important
  Scenario: The notification database in a container is restored from its latest backup
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 900 documents
    And a backup of "notifydb" is taken
    When "notifydb" is lost
    And "notifydb" is restored from its latest backup
    Then "notifydb" matches its state at the backup
    And "notifydb" holds 900 documents
    And the recovery time is within 2 hours
