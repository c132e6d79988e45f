"""The history of runs under a report directory: one JSON line per run, chained by sha256.

Each entry records the run's results digest and a summary of every scenario (what the trend
charts need), plus `prev` (the previous entry's hash) and `hash` (sha256 of the entry without
`hash`). Editing a results.json, editing or removing an entry, or removing a run's results is
detected by `verify`. A chain cannot prove that its newest entries were not cut off: the report
prints the chain head so a signed report anchors it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill.controls import control_ids
from drill.errors import DrillError
from drill.report.integrity import DIGEST_KEY, canonical, seal_problem
from drill.report.signing import VALID, SigningKey, check_history_entry, check_results, sign_history_hash

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HISTORY_FILENAME = "history.jsonl"
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


def _parse(line: str, number: int, path: Path) -> HistoryEntry:
    try:
        raw = json.loads(line)
        points = [ScenarioPoint(**p) for p in raw.pop("scenarios", [])]
        return HistoryEntry(**raw, scenarios=points)
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"{path}:{number}: not a history entry ({exc}); the history was edited by hand. "
                           f"Restore it from a copy; `drill report --verify` names what differs") from None


def read_history(report_dir: Path) -> list[HistoryEntry]:
    path = history_path(report_dir)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_parse(line, n, path) for n, line in enumerate(lines, 1) if line.strip()]


def record_run(report_dir: Path, results_path: Path, signer: SigningKey | None = None) -> HistoryEntry:
    """Append the run whose results.json is at `results_path` to the chain (under a file lock); with a
    signing key, the entry carries the signature of its hash (so the signed head vouches for the chain)."""
    results = json.loads(results_path.read_text(encoding="utf-8"))
    digest = results.get(DIGEST_KEY)
    if not isinstance(digest, str):
        raise HistoryError(f"{results_path}: results carry no {DIGEST_KEY}; they cannot join the history")
    report_dir.mkdir(parents=True, exist_ok=True)
    path = history_path(report_dir)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two runs finishing together still make one chain
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        last = _parse(lines[-1], len(lines), path) if lines else None
        try:
            relative = str(results_path.resolve().relative_to(report_dir.resolve()))
        except ValueError:
            relative = str(results_path.resolve())
        entry = HistoryEntry(seq=(last.seq + 1) if last else 1, run_id=results.get("run_id", ""),
                             results=relative, results_sha256=digest, started_at=results.get("started_at", ""),
                             status=results.get("status", ""), prev=last.hash if last else GENESIS,
                             scenarios=points_of(results))
        entry.hash = entry.compute_hash()
        line: dict[str, Any] = {**entry.body(), "hash": entry.hash}
        if signer is not None:
            entry.signature = line["signature"] = sign_history_hash(entry.hash, signer)
        handle.seek(0, 2)
        handle.write(json.dumps(line, separators=(",", ":")) + "\n")
        handle.flush()
    return entry


@dataclass
class Problem:
    run_id: str
    message: str

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.message}" if self.run_id else self.message


def verify(report_dir: Path, only: Path | None = None, public: Ed25519PublicKey | None = None) -> list[Problem]:
    """Every way the history and the results under `report_dir` disagree (empty: intact).

    With `only` (a results.json), check that run alone: its digest and its history entry. With a
    public key, signatures are required too: the history's head and every results.json checked.
    """
    problems: list[Problem] = []
    try:
        entries = read_history(report_dir)
    except HistoryError as exc:
        return [Problem("", str(exc))]
    prev = GENESIS
    recorded: set[str] = set()
    for index, entry in enumerate(entries, 1):
        if entry.hash != entry.compute_hash():
            problems.append(Problem(entry.run_id, f"history entry {entry.seq} was edited (its hash does not match)"))
        if entry.prev != prev or entry.seq != index:
            problems.append(Problem(entry.run_id, f"history entry {entry.seq} does not follow entry {index - 1}: "
                                                  "an earlier entry was removed, reordered or edited"))
        prev = entry.hash
        results_file = (report_dir / entry.results).resolve()
        recorded.add(str(results_file))
        if only is not None and results_file != only.resolve():
            continue
        problems.extend(_check_results(entry, results_file, report_dir))
    candidates = [only] if only is not None else sorted(report_dir.glob(f"*/{'results.json'}"))
    if public is not None and only is None:
        candidates = sorted(set(candidates) | {p for p in (report_dir / e.results for e in entries) if p.is_file()})
    for results_file in candidates:
        if str(results_file.resolve()) not in recorded:
            run_id = results_file.parent.name
            problems.append(Problem(run_id, f"{_rel(results_file, report_dir)} is not in the history "
                                            f"({HISTORY_FILENAME}): added by hand, or its entry was removed"))
            problems.extend(_seal_only(run_id, results_file, report_dir))
    if public is not None:
        problems.extend(_signature_problems(report_dir, entries, candidates, public))
    return problems


def _signature_problems(report_dir: Path, entries: list[HistoryEntry], results_files: list[Path],
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
    for results_file in results_files:
        check = check_results(results_file, public)
        if check.state != VALID:
            problems.append(Problem(results_file.parent.name, f"{_rel(results_file, report_dir)}: {check.message}"))
    return problems


def _check_results(entry: HistoryEntry, results_file: Path, report_dir: Path) -> list[Problem]:
    if not results_file.is_file():
        return [Problem(entry.run_id, f"removed: {_rel(results_file, report_dir)} is missing "
                                      f"(history entry {entry.seq} records it)")]
    problems = _seal_only(entry.run_id, results_file, report_dir)
    try:
        digest = json.loads(results_file.read_text(encoding="utf-8")).get(DIGEST_KEY)
    except ValueError:
        return problems
    if not problems and digest != entry.results_sha256:
        problems.append(Problem(entry.run_id, f"edited: {_rel(results_file, report_dir)} is not the results "
                                              f"recorded in history entry {entry.seq} (it was re-sealed)"))
    return problems


def _seal_only(run_id: str, results_file: Path, report_dir: Path) -> list[Problem]:
    try:
        data = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Problem(run_id, f"{_rel(results_file, report_dir)} is not readable JSON ({exc})")]
    problem = seal_problem(data) if isinstance(data, dict) else "it is not a JSON object"
    return [Problem(run_id, f"edited: {_rel(results_file, report_dir)}: {problem}")] if problem else []


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve().parent))
    except ValueError:
        return str(path)
