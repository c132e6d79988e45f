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
    date in their name (`userdb_20240115_143000`, read as UTC), else by their mtime; that date is the
    backup's consistent time for the RPO. A relative glob is relative to the drill.toml folder (or the
    working directory). If drill wrote the file earlier in the same scenario, its fingerprint is reused;
    otherwise `matches its state at the backup` cannot be checked: use `holds N rows`."""
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
