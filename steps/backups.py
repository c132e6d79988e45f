"""Sentences about backups: taken by drill, or made outside it and found (a glob, the repository)."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.vocabulary import STORE, sentence


@sentence("given when", rf"a backup of {STORE} is taken",
          "Takes a backup with the store's native tool (PostgreSQL: pg_dump -Fc) and fingerprints the same snapshot.",
          'Given a backup of "userdb" is taken')
def take_backup(drill: DrillScenario, store: str) -> None:
    drill.take_backup(store)


@sentence("given when", rf"the latest backup of {STORE} in \"(?P<pattern>[^\"]+)\"",
          "Uses the newest file matching a glob as the store's latest backup, dated by its name or mtime.",
          'Given the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"')
def latest_backup_in(drill: DrillScenario, store: str, pattern: str) -> None:
    drill.use_latest_backup(store, pattern)


@sentence("given when", rf"the latest backup of {STORE} in the repository",
          "Uses the newest backup `drill backup` made of the store ([repository]), checked and decrypted.",
          'Given the latest backup of "userdb" in the repository')
def latest_repository_backup(drill: DrillScenario, store: str) -> None:
    from drill.repository import use_in_drill

    use_in_drill(drill, store)


# The store of a freshness check need not be declared (nothing is provisioned): its name is not a `store` group.
_NAMED = r'"(?P<name>[^"]+)"'


@sentence("then", rf"the latest backup of {_NAMED} in \"(?P<pattern>[^\"]+)\" is at most (?P<duration>.+) old",
          "Freshness without a restore: the newest file (or, with a trailing `/`, folder) matching the glob is dated "
          "within the duration, by its name (read in `backup_time_zone`) or its mtime; a date in the future fails. "
          "No store is provisioned. The age is RPO evidence.",
          'Then the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz" is at most 1 hour old')
def latest_backup_in_is_fresh(drill: DrillScenario, name: str, pattern: str, duration: str) -> None:
    drill.check_backup_age_in(name, pattern, duration)


@sentence("then", rf"the latest backup of {_NAMED} is at most (?P<duration>.+) old",
          "Freshness of the latest backup the scenario knows of the store (found by glob, taken, or from the "
          "repository), else of the repository's newest backup of it (`drill backup`).",
          'Then the latest backup of "userdb" is at most 1 hour old')
def latest_backup_is_fresh(drill: DrillScenario, name: str, duration: str) -> None:
    drill.check_backup_age(name, duration)
