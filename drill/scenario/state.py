"""The one state a running scenario's collaborators share: its stores, backups, restores, clock and evidence.

Each collaborator (drill.scenario.recovery, .safety, .point_in_time, .whole_system, .verification,
.targets, ...) reads and writes this object and nothing else of the others; backups are recorded
through `record_backup` only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from drill.cleanup import CleanupStack
from drill.clock import RecoveryClock
from drill.config import Config
from drill.errors import BackupError, StoreError
from drill.evidence import BackupEvidence, Evidence
from drill.fingerprint import Fingerprint
from drill.markers import MarkerWriter
from drill.progress import Reporter
from drill.results import ScenarioResult
from drill.stores.base import BackupArtifact, Store


@dataclass
class RestoreRecord:
    source: str  # the store whose backup was restored
    target: str  # the store that now holds the restored data
    artifact: BackupArtifact
    started_at: float
    recovery_point: float | None = None
    rpo_method: str | None = None


@dataclass
class ScenarioState:
    config: Config
    result: ScenarioResult
    reporter: Reporter
    clock: RecoveryClock
    cleanup: CleanupStack = field(default_factory=CleanupStack)
    stores: dict[str, Store] = field(default_factory=dict)
    backups: dict[str, list[BackupArtifact]] = field(default_factory=dict)  # usable for restores, oldest first
    writers: dict[str, MarkerWriter] = field(default_factory=dict)
    disaster_at: dict[str, float] = field(default_factory=dict)
    disaster_position: dict[str, str] = field(default_factory=dict)  # the log position at the disaster (PointInTime)
    restores: dict[str, RestoreRecord] = field(default_factory=dict)  # by the store that holds the restored data
    # The last restore failed (or was interrupted): the recovery time is not measured, a target on it is missed.
    recovery_failed: bool = False
    throwaway_backups: list[Path] = field(default_factory=list)  # written here for throwaway stores: removed at the end
    # Fingerprints of backups this scenario wrote to a path (e.g. a runbook-style dump found later by glob).
    fingerprints_by_path: dict[Path, Fingerprint] = field(default_factory=dict)
    current_line: int = 0  # line of the step being run (set by the plugin), for target sources
    # The checks that passed, by the store they checked (what a self-test proves bites at the end).
    passed_checks: dict[str, list[str]] = field(default_factory=dict)
    # Backups drill took in this scenario of data it seeded itself (by id; by path for a dump found later):
    # a count of what they restore is scaled by seed_scale, as the seed was (holds_seeded_data).
    seeded_backups: set[str] = field(default_factory=set)
    seeded_paths: set[Path] = field(default_factory=set)

    @property
    def evidence(self) -> Evidence:
        return self.result.evidence

    def info(self, text: str) -> None:
        self.reporter.info(text, force=True)

    def store(self, name: str) -> Store:
        try:
            return self.stores[name]
        except KeyError:
            raise StoreError(f"store {name!r} is not declared in this scenario: add a step such as "
                             f"`Given the PostgreSQL store \"{name}\"` before using it") from None

    def record_backup(self, artifact: BackupArtifact, *, usable: bool = True, written: bool = False,
                      evidence: BackupEvidence | None = None, in_evidence: bool = True) -> None:
        """The one way a backup enters a scenario.

        usable: it becomes the store's latest backup (what "restored from its latest backup" restores);
        written: this scenario wrote the file: removed at the end for a throwaway store, kept with a
        manifest next to it for a live one; evidence: what the evidence says of it (default: the
        artifact's own record); in_evidence: False for a backup derived from one already recorded.
        """
        if usable:
            self.backups.setdefault(artifact.store, []).append(artifact)
        if written:
            if self.store(artifact.store).config.is_live:
                _write_manifest(artifact)
            else:
                self.throwaway_backups.append(artifact.path)
        if in_evidence:
            self.evidence.backups.append(evidence or artifact.as_evidence())

    def took_backup(self, artifact: BackupArtifact, path: Path | None = None) -> None:
        """drill took `artifact` itself (written at `path` for a dump found later by glob): if its store holds only
        data drill seeded in this scenario, a restore of it holds seeded data too."""
        if self.holds_seeded_data(artifact.store):
            self.seeded_backups.add(artifact.id)
            if path is not None:
                self.seeded_paths.add(path.resolve())

    def found_backup(self, artifact: BackupArtifact, path: Path) -> None:
        """A backup found by glob is seeded data only if it is a dump drill wrote of seeded data in this scenario."""
        if path.resolve() in self.seeded_paths:
            self.seeded_backups.add(artifact.id)

    def holds_seeded_data(self, name: str) -> bool:
        """Whether what `name` holds is data drill seeded in this scenario, so that seed_scale applies to counts of
        it: a store seeded here, or restored from a backup drill took of one. Never a live store (production's data,
        whatever drill added) nor data restored from a backup found, fetched or made outside drill."""
        store = self.store(name)
        if store.config.is_live:
            return False
        record = self.restores.get(name)
        if record is not None:
            return record.artifact.id in self.seeded_backups
        return name in self.evidence.seeded

    def latest_backup(self, name: str) -> BackupArtifact:
        found = self.backups.get(name)
        if not found:
            raise BackupError(f"no backup of {name!r} in this scenario: take one first "
                              f"(`Given a backup of \"{name}\" is taken`) or name one "
                              f"(`Given the latest backup of \"{name}\" in \"backups/{name}_*.sql.gz\"`)")
        return found[-1]

    def verified(self, name: str) -> None:
        """A restored store was verified: the RTO clock stops here (the last verification wins)."""
        if name in self.restores and self.clock.started:
            self.clock.stop()
            self.result.rto_seconds = self.clock.rto()


def _write_manifest(artifact: BackupArtifact) -> None:
    manifest = {**artifact.evidence(),
                "fingerprint": artifact.fingerprint.to_dict() if artifact.fingerprint else None}
    target = artifact.path.with_name(artifact.path.name + ".manifest.json")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, target)
