"""The repository [repository] names, and a drill's step that restores the newest backup production made into it."""

from __future__ import annotations

import dataclasses
import shutil
from typing import TYPE_CHECKING

from drill import crypto, safe_paths
from drill.repository.local import Repository
from drill.results import iso
from drill.stores.base import BackupArtifact

if TYPE_CHECKING:
    from drill.config import Config
    from drill.scenario import DrillScenario


def open_repository(config: Config) -> Repository:
    """The repository [repository] names: a local directory, or a GCS bucket prefix."""
    if config.repository.gcs:
        from drill.repository_gcs import GcsRepository

        return GcsRepository(config.repository.gcs, config.repository_path)
    return Repository(config.repository_path)


def use_in_drill(drill: DrillScenario, name: str) -> BackupArtifact:
    """A drill's step: the newest repository backup of `name` (what production's cron made) becomes the
    store's latest backup, checked and decrypted now, with the fingerprint its manifest recorded."""
    drill.store(name)  # declared first, like every step that names a store
    repo = open_repository(drill.config)
    key_file = drill.config.repository.key_file
    entry = repo.get(name, "latest")
    workdir = safe_paths.private_temp("drill-repo-")
    drill.cleanup.push(f"remove the checked copy of backup {entry.id}", lambda: shutil.rmtree(workdir, True))
    with drill.clock.phase("fetch", name):
        artifact = repo.materialize(entry, crypto.load_key(key_file) if key_file else None, workdir)
    evidence = dataclasses.replace(artifact.as_evidence(), path=str(entry.directory),
                                   encryption=entry.manifest.encryption)
    drill.record_backup(artifact, evidence=evidence)
    drill.reporter.info(f"latest repository backup of {name}: {entry.id} (consistent at "
                        f"{iso(artifact.consistent_at)}, checked)", force=True)
    return artifact
