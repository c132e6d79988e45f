"""What a scenario recorded as evidence, typed: the report, JUnit and results.json read fields, not dict keys.

The JSON shape in results.json is the one drill always wrote (`"evidence": {"stores": ..., "backups":
[...], ...}`); sections that stayed empty are left out, as before. Sections this version does not
know (written by a newer drill) are kept in `other`, so that a report still shows them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Always written, even empty (they were since the first version of results.json).
ALWAYS = ("stores", "backups", "fingerprints", "markers")


@dataclass(frozen=True)
class FileEvidence:
    """One file of a backup that is a folder (a mongodump folder, an AOF folder, a Firestore export)."""

    path: str  # relative to the folder, with `/`
    size: int
    sha256: str


@dataclass
class BackupEvidence:
    """One backup a scenario took, found or fetched: where it is, how to check it, what it is consistent to."""

    id: str
    store: str
    format: str = ""
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    source: str = "drill"  # drill | external | repository
    created_at: float | None = None
    consistent_at: float | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)
    server_version: str | None = None
    encryption: dict[str, Any] | None = None  # a repository backup's encryption (key id, cipher)
    # A backup that is a folder: every file in it; `sha256` is then the sha256 of these lines as
    # `sha256sum` prints them (`<sha256>  <path>`, sorted by path), `size` their total.
    files: list[FileEvidence] | None = None
    # How the backup differs from the store right before it (a live MongoDB's writers during the dump), per part.
    differs_from_store: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for optional in ("encryption", "files"):  # only repository backups are encrypted; only folders have files
            if data[optional] is None:
                del data[optional]
        if not data["differs_from_store"]:  # the common case: the backup is the store's state
            del data["differs_from_store"]
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BackupEvidence:
        files = raw.get("files")
        listed = [_build(FileEvidence, f) for f in files if isinstance(f, dict)] if isinstance(files, list) else None
        return _build(cls, {"id": "", "store": "", **raw, "files": listed})


@dataclass
class FingerprintEvidence:
    """A store's fingerprint at its backup and after the restore (Fingerprint.to_dict shapes), and how they differ."""

    backup: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    differences: list[dict[str, str]] = field(default_factory=list)
    details: list[str] | None = None  # the items that differ, for kinds that can say (ExplainsDifferences)

    @property
    def unit(self) -> str:
        return str(self.before.get("unit", "items"))

    @property
    def part_label(self) -> str:
        return str(self.before.get("part_label", "part"))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.details is None:
            del data["details"]  # a rollback's comparison names no items
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FingerprintEvidence:
        return _build(cls, {"backup": None, "before": {}, "after": {}, **raw})


@dataclass
class CountEvidence:
    expected: int
    actual: int
    at_least: bool = False  # `holds at least N`: a lower bound, met when actual >= expected
    # The sentence's figure when seed_scale scaled it into `expected` (data drill seeded); None: not scaled.
    scaled_from: int | None = None

    @property
    def met(self) -> bool:
        return self.actual >= self.expected if self.at_least else self.actual == self.expected


@dataclass
class FreshnessEvidence:
    """How old a store's latest backup was when a freshness step checked it (RPO evidence without a restore)."""

    backup: str  # the backup's id (a file name for a backup found by glob)
    path: str | None
    dated_at: float  # what the backup claims to be from (epoch)
    dated_by: str  # name (read in time_zone) | mtime | repository | drill
    age_seconds: float
    limit_seconds: float
    fresh: bool
    checked_at: float
    time_zone: str = "UTC"
    # Newer repository backups passed over because their recorded verification failed: "<id> (<why>)".
    skipped: list[str] = field(default_factory=list)


@dataclass
class SelfTestEvidence:
    """One check proven to bite (or not): a fault planted in a restored copy, the failure it caused, its removal."""

    status: str  # proven | not-caught | skipped (a live store, or a kind that cannot plant a change)
    check: str = ""  # the check re-run with the fault: "matches its state at the backup", ...
    fault: str = ""  # what was planted: "changed row ... of table public.users"
    part: str = ""  # the part the failure had to name
    message: str = ""  # the failure the check raised with the fault in place, or why nothing was planted
    removed: bool = False  # the fault was removed and the check passed again
    seconds: float = 0.0
    passed: list[str] = field(default_factory=list)  # the scenario's checks of the store that had passed


_TYPED_SECTIONS: dict[str, type] = {"counts": CountEvidence, "freshness": FreshnessEvidence,
                                    "self_test": SelfTestEvidence}


@dataclass
class Evidence:
    """Everything a scenario recorded, by section."""

    stores: dict[str, dict[str, str]] = field(default_factory=dict)  # Store.describe() of each store
    backups: list[BackupEvidence] = field(default_factory=list)
    fingerprints: dict[str, FingerprintEvidence] = field(default_factory=dict)
    markers: dict[str, dict[str, Any]] = field(default_factory=dict)  # the RPO writer and the measured RPO
    seeded: dict[str, int] = field(default_factory=dict)
    counts: dict[str, CountEvidence] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)  # "policy", and per store its safety copy and rollback
    planted_failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    pitr: dict[str, dict[str, Any]] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)  # the whole-system plan, per-store outcomes
    health: list[dict[str, Any]] = field(default_factory=list)
    interrupted_restores: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness: dict[str, FreshnessEvidence] = field(default_factory=dict)  # by store: its latest backup's age
    self_test: dict[str, SelfTestEvidence] = field(default_factory=dict)  # by store: checks proven to bite
    other: dict[str, Any] = field(default_factory=dict)  # sections a newer drill wrote, kept as read

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "other" or not (value or item.name in ALWAYS):
                continue
            if item.name == "backups":
                value = [b.to_dict() for b in value]
            elif item.name == "fingerprints":
                value = {k: f.to_dict() for k, f in value.items()}
            elif item.name in _TYPED_SECTIONS:
                value = {k: dataclasses.asdict(c) for k, c in value.items()}
            out[item.name] = value
        return {**out, **self.other}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evidence:
        known = {f.name for f in dataclasses.fields(cls)} - {"other"}
        evidence = cls(other={k: v for k, v in raw.items() if k not in known})
        for name in known & raw.keys():
            value = raw[name]
            if name == "backups":
                value = [BackupEvidence.from_dict(b) for b in value if isinstance(b, dict)]
            elif name == "fingerprints":
                value = {k: FingerprintEvidence.from_dict(f) for k, f in value.items() if isinstance(f, dict)}
            elif name in _TYPED_SECTIONS:
                typed = _TYPED_SECTIONS[name]
                value = {k: _build(typed, c) for k, c in value.items() if isinstance(c, dict)}
            setattr(evidence, name, value)
        return evidence


T = TypeVar("T")


def _build(cls: type[T], raw: dict[str, Any]) -> T:
    """An instance from what results.json holds: keys this version does not know are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in raw.items() if k in names})
