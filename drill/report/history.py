"""The history of runs under a report directory: one JSON line per run, chained by sha256.

Each entry records the run's results digest and a summary of every scenario (what the trend
charts need), plus `prev` (the previous entry's hash) and `hash` (sha256 of the entry without
`hash`). Editing a results.json, editing or removing an entry, or removing a run's results is
detected by `verify`. A chain cannot prove that its newest entries were not cut off: the report
prints the chain head so a signed report anchors it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill.controls import control_ids
from drill.errors import DrillError
from drill.report.history_store import HISTORY_FILENAME, HistoryStore, default_store
from drill.report.integrity import DIGEST_KEY, canonical, seal_problem
from drill.report.signing import (
    SIG_SUFFIX,
    VALID,
    SigningKey,
    check_history_entry,
    check_results,
    check_results_bytes,
    sign_history_hash,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["HISTORY_FILENAME", "HistoryEntry", "HistoryError", "Problem", "read_history", "record_run", "verify"]
GENESIS = "0" * 64


class HistoryError(DrillError):
    """The history file cannot be read or extended."""


@dataclass
class ScenarioPoint:
    """One scenario of one run, as the trend shows it."""

    id: str  # feature path :: scenario name (stable across runs)
    name: str
    status: str
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_target: float | None
    rpo_target: float | None
    controls: list[str] = field(default_factory=list)  # the audit controls it evidences (@control:ID tags)

    def body(self) -> dict[str, Any]:
        """As the chain hashes it: `controls` only when there are some, so entries written before it existed
        keep their hashes."""
        fields = vars(self)
        return {k: v for k, v in fields.items() if k != "controls" or v}


@dataclass
class HistoryEntry:
    seq: int
    run_id: str
    results: str  # path of results.json relative to the report directory
    results_sha256: str
    started_at: str
    status: str
    prev: str
    hash: str = ""
    scenarios: list[ScenarioPoint] = field(default_factory=list)
    signature: dict[str, Any] | None = None  # ed25519 over `drill history entry <hash>` (drill/report/signing.py)

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "run_id": self.run_id, "results": self.results,
                "results_sha256": self.results_sha256, "started_at": self.started_at, "status": self.status,
                "prev": self.prev, "scenarios": [p.body() for p in self.scenarios]}

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical(self.body())).hexdigest()


def scenario_id(feature: str, name: str) -> str:
    return f"{feature}::{name}"


def _tightest(targets: list[dict[str, Any]], metric: str) -> float | None:
    values = [float(t["target_seconds"]) for t in targets if t.get("metric") == metric]
    return min(values) if values else None


def points_of(results: dict[str, Any]) -> list[ScenarioPoint]:
    points = []
    for s in results.get("scenarios", []):
        targets = s.get("targets", [])
        points.append(ScenarioPoint(
            id=scenario_id(s.get("feature", ""), s.get("name", "")), name=s.get("name", ""),
            status=s.get("status", ""), rto_seconds=s.get("rto_seconds"), rpo_seconds=s.get("rpo_seconds"),
            rto_target=_tightest(targets, "rto"), rpo_target=_tightest(targets, "rpo"),
            controls=control_ids(s.get("tags", []))))
    return points


def history_path(report_dir: Path) -> Path:
    return report_dir / HISTORY_FILENAME


def _parse(line: str, number: int, path: Path | str) -> HistoryEntry:
    try:
        raw = json.loads(line)
        points = [ScenarioPoint(**p) for p in raw.pop("scenarios", [])]
        return HistoryEntry(**raw, scenarios=points)
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"{path}:{number}: not a history entry ({exc}); the history was edited by hand. "
                           f"Restore it from a copy; `drill report --verify` names what differs") from None


def read_history(report_dir: Path, store: HistoryStore | None = None) -> list[HistoryEntry]:
    """The chain of `store` (default: `<report_dir>/history.jsonl`), oldest first."""
    store = store or default_store(report_dir)
    lines = store.read_text().splitlines()
    return [_parse(line, n, store.location) for n, line in enumerate(lines, 1) if line.strip()]


def record_run(report_dir: Path, results_path: Path, store: HistoryStore | None = None,
               signer: SigningKey | None = None) -> HistoryEntry:
    """Append the run whose results.json is at `results_path` to the chain (atomically: see history_store);
    with a signing key, the entry carries the signature of its hash (so the signed head vouches for the chain)."""
    store = store or default_store(report_dir)
    results = json.loads(results_path.read_text(encoding="utf-8"))
    digest = results.get(DIGEST_KEY)
    if not isinstance(digest, str):
        raise HistoryError(f"{results_path}: results carry no {DIGEST_KEY}; they cannot join the history")
    relative = store.put_run(str(results.get("run_id", "")), results_path)

    def next_entry(lines: list[str]) -> tuple[HistoryEntry, str]:
        last = _parse(lines[-1], len(lines), store.location) if lines else None
        entry = HistoryEntry(seq=(last.seq + 1) if last else 1, run_id=results.get("run_id", ""),
                             results=relative, results_sha256=digest, started_at=results.get("started_at", ""),
                             status=results.get("status", ""), prev=last.hash if last else GENESIS,
                             scenarios=points_of(results))
        entry.hash = entry.compute_hash()
        line: dict[str, Any] = {**entry.body(), "hash": entry.hash}
        if signer is not None:
            entry.signature = line["signature"] = sign_history_hash(entry.hash, signer)
        return entry, json.dumps(line, separators=(",", ":"))

    return store.append(next_entry)


@dataclass
class Problem:
    run_id: str
    message: str

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.message}" if self.run_id else self.message


def verify(report_dir: Path, only: Path | None = None, store: HistoryStore | None = None,
           public: Ed25519PublicKey | None = None) -> list[Problem]:
    """Every way the history and the results under `report_dir` disagree (empty: intact).

    With `only` (a results.json), check that run alone: its digest and its history entry. With a
    history kept elsewhere (`store`), each entry's results are read from there, and a run under
    `report_dir` must be the one its entry recorded. With a public key, signatures are required too:
    the history's head and every results.json checked.
    """
    store = store or default_store(report_dir)
    problems: list[Problem] = []
    try:
        entries = read_history(report_dir, store)
    except DrillError as exc:
        return [Problem("", str(exc))]
    prev = GENESIS
    recorded: set[str] = set()
    by_run: dict[str, HistoryEntry] = {}
    merged: set[str] = set()  # content_sha256 of every share a recorded (merged) run was made of
    only_run = _run_id(only.read_bytes()) if only is not None and only.is_file() else None
    for index, entry in enumerate(entries, 1):
        if entry.hash != entry.compute_hash():
            problems.append(Problem(entry.run_id, f"history entry {entry.seq} was edited (its hash does not match)"))
        if entry.prev != prev or entry.seq != index:
            problems.append(Problem(entry.run_id, f"history entry {entry.seq} does not follow entry {index - 1}: "
                                                  "an earlier entry was removed, reordered or edited"))
        prev = entry.hash
        local = store.local_path(entry.results)
        if local is not None:
            recorded.add(str(local))
        by_run[entry.run_id] = entry
        if only is not None and local != only.resolve() and entry.run_id != only_run:
            continue
        problems.extend(_check_results(entry, store, merged))
    runs_here = store.holds_runs_of(report_dir)
    candidates = [only] if only is not None else sorted(report_dir.glob(f"*/{'results.json'}"))
    for results_file in candidates:
        if str(results_file.resolve()) in recorded:
            continue  # checked above, as its entry's results
        where = _rel(results_file, report_dir)
        run_id = results_file.parent.name
        try:
            raw = results_file.read_bytes()
        except OSError as exc:
            problems.append(Problem(run_id, f"{where} is not readable ({exc})"))
            continue
        sealed = _seal_only(run_id, raw, where)
        match = None if runs_here else by_run.get(_run_id(raw) or "")
        if match is not None:  # a history kept elsewhere: this is a local copy of a recorded run
            problems.extend(sealed)
            if not sealed and _digest(raw) != match.results_sha256:
                problems.append(Problem(match.run_id, f"edited: {where} is not the results recorded in history "
                                                      f"entry {match.seq} of {store.location} (it was re-sealed)"))
            continue
        if _is_shard(raw):  # a share's results join the history through the merged run that names them
            problems.extend(sealed)
            if not sealed and _digest(raw) not in merged:
                problems.append(Problem(run_id, f"{where} is a share of a sharded run that no run in the history "
                                                f"({store.location}) was merged from: merge the shares (`drill report "
                                                f"merge`), or remove it"))
            continue
        problems.append(Problem(run_id, f"{where} is not in the history ({store.location}): added by hand, or its "
                                        f"entry was removed"))
        problems.extend(sealed)
    if public is not None:
        problems.extend(_signature_problems(entries, store, only, public))
    return problems


def _signature_problems(entries: list[HistoryEntry], store: HistoryStore, only: Path | None,
                        public: Ed25519PublicKey) -> list[Problem]:
    """With a public key: the chain head must carry a valid signature (it vouches for every entry before it),
    every signature present must be valid, and every results.json checked must carry a valid .sig."""
    problems = []
    for index, entry in enumerate(entries):
        if entry.signature is None and index < len(entries) - 1:
            continue  # an unsigned older entry is covered by the signed head through the chain
        check = check_history_entry(entry.hash, entry.signature, public)
        if check.state != VALID:
            problems.append(Problem(entry.run_id, f"history entry {entry.seq}: {check.message}"))
    if only is not None:
        check = check_results(only, public)
        if check.state != VALID:
            problems.append(Problem(only.parent.name, f"{only.parent.name}/{only.name}: {check.message}"))
        return problems
    for entry in entries:
        raw = store.get(entry.results)
        if raw is None:
            continue  # reported above as removed
        check = check_results_bytes(raw, store.get(entry.results + SIG_SUFFIX), public)
        if check.state != VALID:
            problems.append(Problem(entry.run_id, f"{store.display(entry.results)}: {check.message}"))
    return problems


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _run_id(raw: bytes) -> str | None:
    data = _json(raw)
    return str(data["run_id"]) if isinstance(data, dict) and "run_id" in data else None


def _digest(raw: bytes) -> Any:
    data = _json(raw)
    return data.get(DIGEST_KEY) if isinstance(data, dict) else None


def _is_shard(raw: bytes) -> bool:
    data = _json(raw)
    return isinstance(data, dict) and isinstance(data.get("shard"), dict)


def _check_results(entry: HistoryEntry, store: HistoryStore, merged: set[str]) -> list[Problem]:
    where = store.display(entry.results)
    raw = store.get(entry.results)
    if raw is None:
        return [Problem(entry.run_id, f"removed: {where} is missing (history entry {entry.seq} records it)")]
    data = _json(raw)
    if isinstance(data, dict):
        merged.update(str(m.get("content_sha256")) for m in data.get("merged_from") or [] if isinstance(m, dict))
    problems = _seal_only(entry.run_id, raw, where)
    if not problems and _digest(raw) != entry.results_sha256:
        problems.append(Problem(entry.run_id, f"edited: {where} is not the results recorded in history entry "
                                              f"{entry.seq} (it was re-sealed)"))
    return problems


def _seal_only(run_id: str, raw: bytes, where: str) -> list[Problem]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return [Problem(run_id, f"{where} is not readable JSON ({exc})")]
    problem = seal_problem(data) if isinstance(data, dict) else "it is not a JSON object"
    return [Problem(run_id, f"edited: {where}: {problem}")] if problem else []


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve().parent))
    except ValueError:
        return str(path)
