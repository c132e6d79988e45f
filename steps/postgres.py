"""Sentences only PostgreSQL stores understand (the kind names this module in KindSpec.steps)."""

from __future__ import annotations

from drill.errors import BackupError, StoreError
from drill.scenario import DrillScenario
from drill.stores.base import BackupArtifact
from drill.stores.capabilities import DumpsSql
from drill.stores.postgres import UsesWalArchive
from drill.stores.postgres.formats import BASE_BACKUP
from drill.vocabulary import STORE, sentence


@sentence("given", rf"the (?P<kind>PostgreSQL) store {STORE} archiving its WAL",
          "Declares a local PostgreSQL store whose WAL is archived, for point-in-time recovery (as `pitr = true`).",
          'Given the PostgreSQL store "userdb" archiving its WAL')
def declare_pitr_store(drill: DrillScenario, kind: str, store: str) -> None:
    """Declares a local PostgreSQL store whose cluster archives every WAL segment (as `pitr = true` in
    drill.toml), so that it can be recovered to a point in time."""
    drill.declare(kind, store, options={"pitr": True})  # what `pitr = true` in drill.toml says


@sentence("given when", rf"a gzip'd SQL dump of {STORE} is saved as \"(?P<path>[^\"]+)\"",
          "Writes a runbook-style backup (pg_dump | gzip) to a path; {timestamp} becomes YYYYmmdd_HHMMSS.",
          'Given a gzip\'d SQL dump of "userdb" is saved as "backups/postgres/userdb_{timestamp}.sql.gz"',
          needs=DumpsSql)
def save_runbook_dump(drill: DrillScenario, store: str, path: str) -> None:
    """Writes a runbook-style backup (`pg_dump -Fp -Z 6`: plain SQL, gzip'd) to the path; `{timestamp}`
    becomes the UTC `YYYYmmdd_HHMMSS`. A relative path is relative to the drill.toml folder (or the
    working directory). This step does not make it the latest backup: find it with `the latest backup of
    ... in "GLOB"`."""
    drill.save_runbook_dump(store, path)


@sentence("given when", rf"the latest base backup of {STORE} in \"(?P<pattern>[^\"]+)\" with the WAL archive "
                        rf"\"(?P<wal>[^\"]+)\"",
          "PostgreSQL: the newest base_backup_*.tar.gz (pg_basebackup -Ft | gzip) and the WAL archive folder it is "
          "replayed with: restored from its latest backup (all the WAL) or to a point in time (the runbook's PITR).",
          'Given the latest base backup of "userdb" in "backups/postgres/base_backup_*.tar.gz" with the WAL archive '
          '"backups/postgres/wal/"', needs=UsesWalArchive)
def latest_base_backup(drill: DrillScenario, store: str, pattern: str, wal: str) -> None:
    from drill import found_backups

    target = drill.store(store)
    artifact = drill.find_backup(store, pattern)
    if artifact.format != BASE_BACKUP.name:
        raise BackupError(f"{artifact.path} is not a base backup ({artifact.format}): a base backup is a gzip'd tar of "
                          f"a data directory, with PG_VERSION and backup_label (pg_basebackup -Ft | gzip)")
    folder = found_backups.matches(wal if wal.endswith("/") else wal + "/", drill.config.base_dir)
    if len(folder) != 1:
        raise BackupError(f"the WAL archive {wal!r} of {store!r} is not one folder (found {len(folder)})")
    sha256, size, files = found_backups.digest(folder[0])
    wal_archive = BackupArtifact(id=folder[0].name, store=store, kind=target.kind, format="pg-wal-archive",
                                 path=folder[0], sha256=sha256, size=size, created_at=artifact.created_at,
                                 consistent_at=artifact.consistent_at, source="external", files=files)
    if not isinstance(target, UsesWalArchive):
        raise StoreError(f"{store!r} is a {target.kind} store: it cannot replay a WAL archive")
    target.use_wal_archive(artifact.path, folder[0])
    drill.use_found_base_backup(store, artifact, wal_archive)
