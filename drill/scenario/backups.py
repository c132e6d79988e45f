"""Backups of a scenario: taken by the store, written as the runbook's cron does, or found by glob."""

from __future__ import annotations

import os
import time
from pathlib import Path

from drill import backup_dates
from drill.errors import StoreError
from drill.scenario.state import ScenarioState
from drill.stores import capabilities
from drill.stores.base import BackupArtifact
from drill.stores.capabilities import DumpsSql, ObjectStore, ObjectVersions


class Backups:
    def __init__(self, state: ScenarioState) -> None:
        self.state = state

    def take(self, name: str) -> BackupArtifact:
        state = self.state
        store = state.store(name)
        with state.clock.phase("backup", name):
            artifact = store.backup(state.config.backup_dir_for(store.config) / name, state.reporter.info)
        state.took_backup(artifact)
        state.record_backup(artifact, written=True)
        return artifact

    def take_into_bucket(self, name: str, bucket: str) -> BackupArtifact:
        store = self.state.store(name)
        if not isinstance(store, ObjectStore):
            raise StoreError(capabilities.lacks(name, store.kind, ObjectStore, "a backup into a bucket"))
        store.use_backup_bucket(bucket)
        return self.take(name)

    def save_runbook_dump(self, name: str, path_template: str) -> Path:
        """A gzip'd plain-SQL dump, as the seed runbook's cron makes, at a path with {timestamp}."""
        state = self.state
        store = state.store(name)
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        path = Path(path_template.replace("{timestamp}", stamp))
        path = Path(os.path.normpath(path if path.is_absolute() else state.config.base_dir / path))  # no dr/../x
        if not isinstance(store, DumpsSql):
            raise StoreError(capabilities.lacks(name, store.kind, DumpsSql, "a gzip'd SQL dump"))
        with state.clock.phase("backup", name):
            artifact = store.dump_sql_gz(path, state.reporter.info)
        if artifact.fingerprint is not None:
            state.fingerprints_by_path[path.resolve()] = artifact.fingerprint
        state.took_backup(artifact, path)
        state.record_backup(artifact, usable=False, written=True)  # used once found: `the latest backup ... in`
        return path

    def find(self, name: str, pattern: str) -> BackupArtifact:
        """The newest file (or folder, for a glob ending in `/`) matching a glob, dated by its name
        (…_20240115_143000…, in backup_time_zone) or its mtime; a date in the future is an error. Its format read
        from its content by the store's kind, its sha256 and size taken (a folder: of each of its files). Not yet
        the store's latest backup."""
        from drill import found_backups

        state = self.state
        store = state.store(name)
        zone = state.config.time_zone_of(name)
        newest, date = found_backups.newest_dated(pattern, state.config.base_dir, repr(name), zone)
        backup_dates.require_not_future(f"the latest backup of {name!r}, {newest},", date)
        when = date.at
        with state.clock.phase("fetch", name):
            artifact = found_backups.found_backup(name, store.kind, newest, when,
                                                  fingerprint=state.fingerprints_by_path.get(newest.resolve()))
        state.found_backup(artifact, newest)
        state.info(f"latest backup of {name}: {newest} ({artifact.format}, dated {date.text}, sha256 "
                   f"{artifact.sha256})")
        return artifact

    def use_latest(self, name: str, pattern: str) -> BackupArtifact:
        """The newest match of a glob becomes the store's latest backup (what "restored from its latest backup"
        restores), with its sha256 in the evidence."""
        artifact = self.find(name, pattern)
        self.state.record_backup(artifact)
        return artifact

    def use_object_versions(self, name: str) -> BackupArtifact:
        """The object generations current when the latest backup was taken become the latest backup."""
        state = self.state
        store = state.store(name)
        if not isinstance(store, ObjectVersions):
            raise StoreError(capabilities.lacks(name, store.kind, ObjectVersions, "a restore from object versions"))
        taken = state.latest_backup(name)
        artifact = store.versions_artifact(taken)
        if taken.id in state.seeded_backups:  # the same data, read from object generations
            state.seeded_backups.add(artifact.id)
        state.record_backup(artifact, in_evidence=False)  # a view of a backup already in the evidence
        return artifact


def date_of(path: Path, zone_name: str = "UTC") -> float:
    """A backup's date from its name (runbook style: userdb_20240115_143000.sql.gz, read in `zone_name`), else
    its mtime (drill.backup_dates)."""
    return backup_dates.date_of(path, zone_name)
