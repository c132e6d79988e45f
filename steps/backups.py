"""Sentences about backups: taken by drill, or made outside it and found (a glob, the repository)."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.vocabulary import STORE, sentence


@sentence("given when", rf"a backup of {STORE} is taken",
          "Takes a backup with the store's native tool (PostgreSQL: pg_dump -Fc) and fingerprints the same snapshot.",
          'Given a backup of "userdb" is taken')
def take_backup(drill: DrillScenario, store: str) -> None:
    """Takes a backup with the store's own tool (PostgreSQL: `pg_dump -Fc --snapshot`; Redis: `BGSAVE`
    and a copy of the RDB; MongoDB: mongodump's layout; ...) into `<backup_dir>/<store>/`, and a
    fingerprint of the same snapshot. The file is written as `.partial` and renamed only when complete;
    its sha256 is recorded."""
    drill.take_backup(store)


@sentence("given when", rf"the latest backup of {STORE} in \"(?P<pattern>[^\"]+)\"",
          "Uses the newest file matching a glob as the store's latest backup, dated by its name or mtime.",
          'Given the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"')
def latest_backup_in(drill: DrillScenario, store: str, pattern: str) -> None:
    """Uses the newest file that matches the glob as the store's latest backup. Files are dated by a
    date in their name (`userdb_20240115_143000`, read in `backup_time_zone`, default UTC), else by their
    mtime; a date in the future is an error. That date is the backup's consistent time for the RPO (or,
    when the restored copy holds canaries of `drill canary`, the newest canary's time). A relative glob
    is relative to the drill.toml folder (or the working directory). If drill wrote the file earlier in
    the same scenario, its fingerprint is reused; otherwise `matches its state at the backup` cannot be
    checked: use `holds N rows`."""
    drill.use_latest_backup(store, pattern)


@sentence("given when", rf"the latest backup of {STORE} in the repository",
          "Uses the newest backup `drill backup` made of the store ([repository]), checked and decrypted.",
          'Given the latest backup of "userdb" in the repository')
def latest_repository_backup(drill: DrillScenario, store: str) -> None:
    """Uses the newest backup that `drill backup` wrote to the `[repository]` (what production's cron
    made) as the store's latest backup. The step checks it completely (sha256, decryption with
    `key_file`, the plaintext's sha256) in a `fetch` phase, outside the RTO when it comes before the
    disaster. The fingerprint in its manifest makes `matches its state at the backup` work; its
    consistent time is the recovery point. The decrypted copy is deleted at the end of the scenario."""
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
    """No store is provisioned, and the store need not be in drill.toml. No match fails, and so does a
    backup dated in the future (a wrong zone or clock), in one line naming the file: `stale backup:
    …/userdb_20240115_143000.sql.gz is 3d 2h old (dated …), more than 1h`. The age is recorded under
    `freshness` in the evidence and, in a scenario that restores nothing, is its RPO (`rpo_method`
    `backup-age`). See [Canaries and self-tests](../canaries.md#freshness-without-a-restore)."""
    drill.check_backup_age_in(name, pattern, duration)


@sentence("then", rf"the latest backup of {_NAMED} is at most (?P<duration>.+) old",
          "Freshness of the latest backup the scenario knows of the store (found by glob, taken, or from the "
          "repository), else of the repository's newest backup of it (`drill backup`).",
          'Then the latest backup of "userdb" is at most 1 hour old')
def latest_backup_is_fresh(drill: DrillScenario, name: str, duration: str) -> None:
    """The same judgement and evidence as the glob form. A repository backup's manifest is authenticated
    when `key_file` is set."""
    drill.check_backup_age(name, duration)
