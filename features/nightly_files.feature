@nightly @rpo:25h
Feature: Nightly: the configuration and certificate archives production made restore
  The runbook restores config_latest.tar.gz and ssl-certificates_latest.tar.gz, then checks the
  certificate's "Not After" with openssl. Each night both archives are extracted into scratch
  folders and checked.

  @rto:30m
  Scenario: The SSL certificates restore and stay valid for a month
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then "ssl" holds the file "cert.pem"
    And "ssl" holds the file "key.pem"
    And the certificate "cert.pem" in "ssl" is valid for at least 30 days

  @rto:30m
  Scenario: The configuration restores
    Given the files store "config"
    And the latest backup of "config" in "backups/config_*.tar.gz"
    When "config" is restored from its latest backup
    Then "config" holds the file "nginx/nginx.conf"
    And "config" holds the file "docker-compose.override.yml"
    And "config" holds 3 files
    And "config" holds 1 files matching "nginx/*.conf"
