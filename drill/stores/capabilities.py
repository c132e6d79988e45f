"""Optional abilities of a store: declared by its kind, checked with isinstance, never probed.

Every store implements drill.stores.base.Store. Some kinds can do more: run SQL, recover to a
point in time, list objects, say which items differ... Each such ability is a small
runtime-checkable Protocol here. A kind lists those its stores implement in
`KindSpec.capabilities`, so that `drill check` can say before anything runs that a sentence needs
an ability a store lacks; when drill acts, it checks the store itself with isinstance.
tests/test_capabilities.py holds every kind to its declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from drill.stores.base import BackupArtifact, Progress


@runtime_checkable
class RunsSql(Protocol):
    def execute_sql(self, text: str) -> None: ...
    def query_value(self, query: str) -> object:
        """The first column of the first row the query returns (None when it returns no row)."""


@runtime_checkable
class DumpsSql(Protocol):
    def dump_sql_gz(self, path: Path, progress: Progress) -> BackupArtifact: ...


@runtime_checkable
class PointInTime(Protocol):
    def recovery_position(self) -> str | None:
        """Where the store's log stands now (a WAL position), or None when it keeps no log to replay."""

    def base_backup(self, progress: Progress) -> BackupArtifact: ...
    def recover_to(self, artifact: BackupArtifact, target_time: float, progress: Progress,
                   position: str | None = None) -> None:
        """Recover in place from a base backup up to a time, or exactly up to a position taken earlier."""

    def present_markers(self) -> list[tuple[int, float]]:
        """Every RPO marker the store holds now, (seq, written at), oldest first."""


@runtime_checkable
class ExplainsDifferences(Protocol):
    def explain_differences(self, artifact: BackupArtifact, parts: set[str]) -> list[str]: ...


@runtime_checkable
class Removable(Protocol):
    def exists(self) -> bool: ...
    def remove(self) -> None:
        """Remove the store's data altogether (what a rollback to "it did not exist" does)."""


@runtime_checkable
class ObjectStore(Protocol):
    def has_object(self, name: str) -> bool: ...
    def use_backup_bucket(self, bucket: str) -> None: ...


@runtime_checkable
class ObjectVersions(Protocol):
    def versions_artifact(self, backup: BackupArtifact) -> BackupArtifact:
        """A backup that restores the object generations current at `backup`'s time."""


@runtime_checkable
class ScratchTargets(Protocol):
    def keep_target(self, name: str) -> None:
        """A target restored `into` is kept when the store closes (asked for, not a drill's scratch copy)."""


@runtime_checkable
class ServerFaults(Protocol):
    def plant_fault(self, fault: str, scratch: Path) -> AbstractContextManager[object]:
        """While the context is open, `fault` ("killed", "full-disk") strikes the next restore."""


@runtime_checkable
class AbortsRestore(Protocol):
    def abort_restore(self) -> None:
        """Stop a restore running in another thread (its time limit passed); best effort."""


@runtime_checkable
class CountsExpiring(Protocol):
    def count_expiring(self) -> int:
        """Units that will expire on their own (Redis: keys with a TTL); drill's markers left out."""


@runtime_checkable
class CountsMatching(Protocol):
    def count_matching(self, pattern: str) -> int:
        """Units whose name matches a glob pattern (`session:*`, `models/*.pb`); drill's markers left out."""


@dataclass
class PlantedChange:
    """One small fault a self-test planted in a restored copy, and how to take it out again."""

    part: str  # the part (table, collection, key-space, prefix, directory) the changed item is in
    item: str  # the item changed, for people: "key session:1", "row (0,3) of public.users, column email"
    undo: Callable[[], None]  # puts the item back exactly as it was


@runtime_checkable
class PlantsChanges(Protocol):
    def plant_change(self) -> PlantedChange:
        """Change one item of the data (a row, key, document, object or file) in place, keeping the counts;
        only ever called on a throwaway or scratch copy (`self_test = true`)."""


# -- abilities the live stores' safety net uses (drill.safety_net, drill.repair) ------------------------------
# No sentence needs them, so kinds do not declare them and they are not in ABILITIES: the net checks a
# store with isinstance when it acts.

@runtime_checkable
class KeepsTargetSettings(Protocol):
    """A store whose re-creation needs settings read while it existed (PostgreSQL: owner, encoding, locale)."""

    def target_settings(self) -> dict[str, Any]:
        """What a later drill (`drill repair`) needs to create the store again as it was (JSON-serialisable)."""

    def use_target_settings(self, settings: dict[str, Any]) -> None: ...


@runtime_checkable
class DropsRestoreTargets(Protocol):
    """A store that can find and remove a restore target (`into`) a killed drill left on its live server."""

    def restore_target_exists(self, name: str) -> bool: ...
    def drop_restore_target(self, name: str) -> None: ...


@runtime_checkable
class KnowsOwnTarget(Protocol):
    """A store whose restores `into` a name go next to it on its own server (a new database, project, bucket or
    volume). A name that is the store's own target would make such a restore an in-place one that skipped every
    guard of an in-place restore (consent, safety copy, journal): drill.stores.base.require_new_restore_target
    refuses it, in the scenario, in `drill restore --into` and in the adapter's own restore."""

    def own_restore_target(self, name: str) -> str | None:
        """What `name` names of this store itself ("database", "project", "bucket", "volume"), or None when it
        names another target."""


# What each ability lets a store do, as messages say it: "... needs a store that <phrase>". A kind's own
# abilities (declared in its folder) add themselves when the kind is declared, with `register`.
ABILITIES: dict[type, str] = {
    RunsSql: "runs SQL",
    DumpsSql: "writes a gzip'd SQL dump (`pg_dump | gzip`)",
    PointInTime: "supports point-in-time recovery",
    ExplainsDifferences: "can say which items differ from a backup",
    Removable: "can be absent altogether (a database a disaster drops)",
    ObjectStore: "holds named objects in buckets",
    ObjectVersions: "keeps object versions (restores to a time from them)",
    ScratchTargets: "restores into new targets it drops when it is closed",
    ServerFaults: "runs on a server drill can kill or starve of disk during a restore",
    AbortsRestore: "can stop a running restore",
    CountsExpiring: "can count what expires on its own (keys with a TTL)",
    CountsMatching: "can count items whose names match a pattern",
    PlantsChanges: "can plant a changed item in a restored copy (self_test = true)",
}


def register(capability: type, what: str) -> type:
    """A kind's own ability (a Protocol in its folder) and how messages say it; returns the capability."""
    ABILITIES[capability] = what
    return capability


def phrase(capability: type) -> str:
    return ABILITIES.get(capability, capability.__name__)


def lacks(store: str, kind: str, capability: type, what: str) -> str:
    """The message for `what` asked of a store of a kind that lacks `capability`."""
    from drill.stores import kinds

    found = kinds.find(kind)
    named = found.display_name if found else kind
    return f"{what} needs a store that {phrase(capability)}; {store!r} is a {named} store"
