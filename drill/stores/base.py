"""The store contract every kind implements: PostgreSQL, MongoDB, Redis, Docker volume, GCS, Firestore.

A Store is one logical unit of data an operator names in a feature (`"userdb"`): a database, a
Redis instance, a bucket, a volume, a Firestore project. Provisioning decides *where* it lives
(local process, container, live); the adapter decides *how* to back it up, restore, lose,
fingerprint, seed and mark it. Safety rules for live stores live here, once, for every kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drill.config import StoreConfig
from drill.errors import BackupError, SafetyError
from drill.evidence import BackupEvidence, FileEvidence
from drill.fingerprint import Fingerprint
from drill.stores import kinds
from drill.stores.capabilities import KnowsOwnTarget

# The tables kinds used to be added to by hand, now read from their declarations (drill.stores.kinds).
UNITS = kinds.KindTable(lambda: {k: s.unit for k, s in kinds.all_kinds().items()})
PART_LABELS = kinds.KindTable(lambda: {k: s.part_label for k, s in kinds.all_kinds().items()})
KIND_NAMES = kinds.KindTable(lambda: {n: s.kind for s in kinds.all_kinds().values() for n in s.names})

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    return None


@dataclass
class BackupArtifact:
    """One backup: its files, where it stands in time, and how to check it is whole."""

    id: str
    store: str
    kind: str
    format: str  # e.g. pg_dump-custom, sql, sql.gz
    path: Path
    sha256: str | None
    size: int
    created_at: float  # when the backup finished being written (epoch)
    consistent_at: float  # the moment the data in it is consistent to (epoch): the recovery point
    tool_versions: dict[str, str] = field(default_factory=dict)
    server_version: str | None = None
    fingerprint: Fingerprint | None = None  # taken in the same snapshot as the backup, when possible
    source: str = "drill"  # drill | external (found by glob: no fingerprint, dated by name or mtime)
    files: tuple[FileEvidence, ...] | None = None  # a backup made outside drill that is a folder: its files
    # How the backup differs from the store right before it, where a writer explains it (a live MongoDB has no
    # snapshot): one line per part, kept as evidence; empty when the backup is the store's state.
    differs_from_store: tuple[str, ...] = ()

    def as_evidence(self) -> BackupEvidence:
        return BackupEvidence(
            id=self.id, store=self.store, format=self.format, path=str(self.path), sha256=self.sha256,
            size=self.size, source=self.source, created_at=self.created_at, consistent_at=self.consistent_at,
            tool_versions=dict(self.tool_versions), server_version=self.server_version,
            files=list(self.files) if self.files is not None else None,
            differs_from_store=list(self.differs_from_store))

    def evidence(self) -> dict[str, Any]:
        """As journals and manifests record it."""
        return self.as_evidence().to_dict()


@dataclass(frozen=True)
class Marker:
    seq: int
    written_at: float  # epoch, client clock: comparable with the disaster time


class MarkerSink(Protocol):
    """Where the RPO writer puts its sequenced, timestamped markers, and reads the newest back."""

    def prepare(self) -> None: ...
    def write(self, marker: Marker) -> None: ...
    def newest(self) -> Marker | None: ...
    def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    name: str
    kind: str
    config: StoreConfig

    @property
    def unit(self) -> str: ...
    def describe(self) -> dict[str, str]: ...
    def seed(self, count: int, progress: Progress = no_progress) -> None: ...
    def count(self, part: str | None = None) -> int: ...
    def fingerprint(self) -> Fingerprint: ...
    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact: ...
    def verify_backup(self, artifact: BackupArtifact) -> None: ...
    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store: ...
    def lose(self) -> None: ...
    def markers(self) -> MarkerSink: ...
    def close(self) -> None: ...
    def require_destructive(self, action: str) -> None: ...
    def require_in_place_restore(self) -> None: ...
    def require_writes(self, action: str) -> None: ...


class Guarded:
    """Safety checks shared by every adapter: a live store is only touched as its config allows."""

    config: StoreConfig
    name: str
    kind: str

    @property
    def unit(self) -> str:
        """What the store's counts count, as its kind declares (rows, documents, keys...)."""
        return kinds.spec(self.kind).unit

    def _elsewhere(self) -> str:
        # A kind whose live stores have no new target next to them (a Redis server) declares it: its messages do
        # not offer that way out.
        found = kinds.find(self.kind)
        if found is not None and not found.live_restore_into:
            return ""
        return (f", or restore into a new target instead: `When \"{self.name}\" is restored from its latest backup "
                f"into \"{self.name}_restored\"`")

    def require_destructive(self, action: str) -> None:
        if self.config.is_live and not self.config.destructive:
            raise SafetyError(
                f"refusing to {action} live store {self.name!r}: its configuration does not allow it. "
                f"Set `destructive = true` under [{self.config.table}] in drill.toml only if this store may be "
                f"destroyed{self._elsewhere()}")

    def require_in_place_restore(self) -> None:
        """An in-place restore of a live store overwrites it: it needs `destructive = true` (two ways out)."""
        if self.config.is_live and not self.config.destructive:
            raise SafetyError(
                f"refusing to restore live store {self.name!r} in place: that overwrites it, and its configuration "
                f"does not allow it. Either set `destructive = true` under [{self.config.table}] in drill.toml (only "
                f"if this store may be overwritten with its backup){self._elsewhere()}")

    def require_writes(self, action: str) -> None:
        if self.config.read_only:
            raise SafetyError(
                f"refusing to {action} live store {self.name!r}: its configuration does not allow writes. "
                f"Set `allow_writes = true` under [{self.config.table}] in drill.toml to let drills write into it")


def require_new_restore_target(store: object, into: str, in_place: str = "") -> None:
    """Refuse a restore `into` a name that is the store's own database, project, bucket or volume.

    A restore `into` a name is a copy next to the store: no `destructive = true`, no safety copy, no journal
    entry for the store itself. Into the store's own target it would overwrite the store with none of those
    (invariant 1 of docs/safety.md): refused, before anything is read or touched. `in_place` says how to ask
    for the in-place restore instead (a sentence or a command); a kind that does not implement KnowsOwnTarget
    is left to its own restore."""
    if not isinstance(store, KnowsOwnTarget):
        return
    what = store.own_restore_target(into)
    if what is None:
        return
    name = getattr(store, "name", "?")
    how = in_place or "restore it in place (no `into`; it needs `destructive = true`)"
    raise SafetyError(
        f"cannot restore {name!r} into {into!r}: {into!r} names the {what} of {name!r} itself, and a restore `into` "
        f"is a copy next to the store, without the guards of an in-place restore. Either {how}, which drill "
        f"guards (on a live store it first keeps a safety copy to put it back from), or name a new {what} "
        f"(`into \"{name}_restored\"`)")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def require_backup_file(artifact: BackupArtifact) -> Path:
    """The artifact's file, or a BackupError saying it is missing."""
    path = artifact.path
    if not path.is_file():
        raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing: {path}")
    return path


def check_recorded_sha256(artifact: BackupArtifact) -> None:
    """A BackupError when the file's sha256 differs from the one recorded when it was taken (if one was)."""
    if artifact.sha256 is not None:
        digest = sha256_file(artifact.path)
        if digest != artifact.sha256:
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: sha256 {digest} does not "
                              f"match {artifact.sha256} recorded when it was taken ({artifact.path})")


def check_backup_file(artifact: BackupArtifact) -> Path:
    """A single-file backup exists and matches its recorded sha256; returns its path."""
    path = require_backup_file(artifact)
    check_recorded_sha256(artifact)
    return path
