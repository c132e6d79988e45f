"""Reading results.json back into the typed model, with what a report says about its integrity.

Unknown keys (written by a newer drill) are ignored and missing ones take their defaults, so a
report can be rendered from any results of schema version 1.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from drill.errors import DrillError
from drill.evidence import Evidence
from drill.report.history import HistoryEntry, Problem, read_history, verify
from drill.report.history_store import HistoryStore
from drill.report.integrity import DIGEST_KEY, seal_problem
from drill.report.sanitize import clean
from drill.report.signing import INVALID, UNSIGNED, SignatureCheck, check_results
from drill.results import (
    RESULTS_FILENAME,
    SCHEMA_VERSION,
    ErrorResult,
    LiveStoreCheck,
    MergedShard,
    PhaseResult,
    RunResult,
    ScenarioResult,
    ShardInfo,
    StepResult,
    TargetResult,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

T = TypeVar("T")


class ResultsError(DrillError):
    """A results.json cannot be found or read."""


def _build(cls: type[T], raw: Any, **nested: Any) -> T:
    if not isinstance(raw, dict):
        raise ResultsError(f"expected an object for {cls.__name__}, found {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in raw.items() if k in names and k not in nested}
    return cls(**values, **nested)


def run_from_dict(raw: dict[str, Any]) -> RunResult:
    scenarios = []
    for s in raw.get("scenarios", []):
        scenarios.append(_build(
            ScenarioResult, s,
            targets=[_build(TargetResult, t) for t in s.get("targets", [])],
            phases=[_build(PhaseResult, p) for p in s.get("phases", [])],
            steps=[_build(StepResult, st) for st in s.get("steps", [])],
            errors=[_build(ErrorResult, e) for e in s.get("errors", [])],
            evidence=Evidence.from_dict(s.get("evidence") or {}),
            live_stores=[_build(LiveStoreCheck, c) for c in s.get("live_stores", [])]))
    shard = raw.get("shard")
    return _build(RunResult, raw, scenarios=scenarios,
                  shard=_build(ShardInfo, shard) if isinstance(shard, dict) else None,
                  merged_from=[_build(MergedShard, m) for m in raw.get("merged_from", [])],
                  repairs=[_build(LiveStoreCheck, c) for c in raw.get("repairs", [])])


@dataclass
class LoadedRun:
    """A run as a report shows it: the results, where they came from, and whether they are intact."""

    run: RunResult
    path: Path
    content_sha256: str | None
    seal_problem: str | None
    history: list[HistoryEntry] = field(default_factory=list)  # up to and including this run
    history_entry: HistoryEntry | None = None
    history_problems: list[Problem] = field(default_factory=list)
    signature: SignatureCheck = field(default_factory=lambda: SignatureCheck(UNSIGNED, None, ""))

    @property
    def report_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def chain_head(self) -> str | None:
        return self.history[-1].hash if self.history else None


def resolve_results(path: Path) -> Path:
    """A results.json, or a run directory holding one."""
    if path.is_dir():
        path = path / RESULTS_FILENAME
    if not path.is_file():
        raise ResultsError(f"{path}: no such results file; give a reports/<run-id>/results.json or its folder")
    return path


def latest_results(report_dir: Path) -> Path:
    found = sorted(report_dir.glob(f"*/{RESULTS_FILENAME}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ResultsError(f"{report_dir}: no runs yet (no */{RESULTS_FILENAME}); run `drill run` first")
    return found[-1]


def load(path: Path, public_key: Ed25519PublicKey | None = None, history: HistoryStore | None = None) -> LoadedRun:
    """A results.json with its integrity: digest, history (`history`: where `[drill] history` keeps it; default:
    beside the run), and (with `public_key`) signatures checked."""
    path = resolve_results(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(raw, dict) or "run_id" not in raw:
        raise ResultsError(f"{path}: not a drill results file (no run_id)")
    if raw.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise ResultsError(f"{path}: schema version {raw['schema_version']} is newer than this drill understands "
                           f"({SCHEMA_VERSION}); upgrade drill")
    try:
        run = run_from_dict(clean(raw))  # the digest was of the raw file; reports show it cleaned
    except TypeError as exc:
        raise ResultsError(f"{path}: not a drill results file ({exc})") from None
    loaded = LoadedRun(run=run, path=path.resolve(), content_sha256=raw.get(DIGEST_KEY), seal_problem=seal_problem(raw))
    try:
        entries = read_history(loaded.report_dir, history)
    except DrillError as exc:
        loaded.history_problems = [Problem("", str(exc))]
        entries = []
    for index, entry in enumerate(entries):
        if (loaded.report_dir / entry.results).resolve() == loaded.path or (
                history is not None and entry.run_id == run.run_id):
            loaded.history = entries[: index + 1]
            loaded.history_entry = entry
            break
    else:
        loaded.history = entries
    if entries:
        loaded.history_problems += verify(loaded.report_dir, only=loaded.path, store=history)
    loaded.signature = check_results(loaded.path, public_key)
    if loaded.signature.state == INVALID:
        loaded.history_problems.append(Problem(run.run_id, f"signature: {loaded.signature.message}"))
    return loaded
