@nightly @rpo:25h
Feature: Nightly: the Docker volume backups production made restore
  The runbook's restore_volume function extracts volume-backups/<volume>_*.tar.gz into a new volume
  through an alpine helper. Each night the newest is extracted into a throwaway volume and counted.

  @rto:4h
  Scenario: The newest prometheus-data archive restores into a volume
    Given the Docker volume store "prometheus-data"
    And the latest backup of "prometheus-data" in "volume-backups/prometheus-data_*.tar.gz"
    When "prometheus-data" is restored from its latest backup
    Then "prometheus-data" holds 40 files
    And "prometheus-data" holds 30 files in "wal"
    And the recovery time is within 4 hours
