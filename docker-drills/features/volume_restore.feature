Feature: Docker volume restore procedure of the seed runbook
  The runbook backs a named volume up into a tar.gz with a helper container (alpine), removes the
  volume, creates it again and extracts the archive into it. This drill does the same and checks
  every file's path, size, mode, owner and content hash against the state at the backup.

  @tier:standard
  Scenario: The application volume is restored from its latest backup
    Given the Docker volume store "appdata"
    And "appdata" is seeded with 300 files
    And a backup of "appdata" is taken
    When "appdata" is lost
    And "appdata" is restored from its latest backup
    Then "appdata" matches its state at the backup
    And "appdata" holds 300 files
    And "appdata" holds 300 files in "seed"
    And the recovery time is within 4 hours

  @tier:standard
  Scenario: The application volume is restored into a new volume while the original stays
    Given the Docker volume store "appdata"
    And "appdata" is seeded with 120 files
    And a backup of "appdata" is taken
    When "appdata" is restored from its latest backup into "appdata_restored"
    Then "appdata_restored" matches its state at the backup
    And "appdata" holds 120 files
