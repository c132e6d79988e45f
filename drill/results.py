"""The result model: what a run did, typed, written as one schema-versioned JSON file.

Renderers read only this file. Nothing here may hold a secret: every string that could carry
one passes through drill.redact before it is stored.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drill.evidence import Evidence
from drill.redact import redact

SCHEMA_VERSION = 1
RESULTS_FILENAME = "results.json"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class StepResult:
    keyword: str
    text: str
    line: int
    status: str = "not_run"  # passed | failed | not_run | interrupted
    seconds: float | None = None
    error: str | None = None


@dataclass
class PhaseResult:
    name: str
    store: str | None
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    in_rto: bool
    status: str


@dataclass
class TargetResult:
    metric: str  # rto | rpo
    target_seconds: float
    source: str  # e.g. "@tier:critical", "@rto:30m", "step at line 14"
    measured_seconds: float | None = None
    met: bool | None = None  # None: not evaluated (an interrupted scenario); False: missed or not measurable
    unmeasured_reason: str | None = None  # why measured_seconds is None (e.g. the restore failed)


@dataclass
class ErrorResult:
    type: str
    message: str
    step: str | None = None
    line: int | None = None


@dataclass
class LiveStoreCheck:
    """The safety net's last word on one live store (drill.safety_net): what the drill did to it, and whether
    it ended as it began or as the backup it was restored from on purpose (else: what drill did about it)."""

    store: str
    kind: str
    location: str = ""
    changes: list[str] = field(default_factory=list)  # e.g. "lost", "restored in place from backup X"
    reference: str | None = None  # what drill could put it back from (a copy of a backup, a safety copy)
    outcome: str = "not checked"  # see safety_net.OUTCOMES
    ok: bool = True  # False: the scenario fails (the store was left worse, or could not be put back)
    verified: bool = False  # a fingerprint taken now matched the expected one
    matched: str | None = None  # which expected state it matched
    differences: list[str] = field(default_factory=list)
    message: str = ""
    seconds: float | None = None
    interrupted: str | None = None  # repairs: which drill left the journal, and when


@dataclass
class ScenarioResult:
    feature: str  # path of the .feature file, relative to the working directory when possible
    feature_name: str
    name: str
    line: int
    tags: list[str]
    status: str = "running"  # passed | failed | error | skipped | interrupted
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_method: str | None = None  # markers | backup-consistent-time
    targets: list[TargetResult] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    errors: list[ErrorResult] = field(default_factory=list)
    nodeid: str = ""
    live_stores: list[LiveStoreCheck] = field(default_factory=list)  # the safety net's final check

    @property
    def targets_met(self) -> bool:
        return all(t.met is not False for t in self.targets)


@dataclass
class ShardInfo:
    """This run is one share of a sharded run (`drill run --shard I/N`); `drill report merge` joins the shares."""

    index: int  # 1-based
    count: int
    plan: str  # sha256 of the whole plan (order and assignment): every share of one run has the same
    balanced_by: str  # history (durations of past runs) | count
    scenarios: list[str]  # the keys (drill.sharding.scenario_key) this share was planned to run, in run order
    order: list[str]  # every key of the whole run, in run order


@dataclass
class MergedShard:
    """One share of a merged run, as `drill report merge` found it."""

    index: int
    run_id: str
    host: str
    status: str
    started_at: str | None
    ended_at: str | None
    content_sha256: str


@dataclass
class RunResult:
    run_id: str
    started_at: str
    schema_version: int = SCHEMA_VERSION
    status: str = "running"  # passed | failed | interrupted | error
    ended_at: str | None = None
    seconds: float | None = None
    host: str = field(default_factory=socket.gethostname)
    operator: str = field(default_factory=lambda: _operator())
    drill_version: str = ""
    git_commit: str | None = None
    git_commit_note: str | None = None  # why git_commit is missing (no git, not a repository, git failed)
    config_path: str | None = None
    config_digest: str = ""
    profile: str | None = None
    command: list[str] = field(default_factory=list)
    # The audit controls declared in drill.toml when the run started ([controls.ID]): id -> title, every_seconds.
    # Scenarios evidence them through their @control:ID tags; the report's Controls section reads this.
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    shard: ShardInfo | None = None  # set in a shard's results (drill run --shard)
    merged_from: list[MergedShard] = field(default_factory=list)  # set in a merged run (drill report merge)
    # Live stores left half-done by a drill that was killed, finished before this run started (drill.repair).
    repairs: list[LiveStoreCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for raw, scenario in zip(data["scenarios"], self.scenarios, strict=True):
            raw["evidence"] = scenario.evidence.to_dict()  # the shape results.json always had
        return redact(data)  # type: ignore[no-any-return]

    def write(self, directory: Path) -> Path:
        """Write results.json atomically (a reader never sees half a file), sealed with its sha256."""
        from drill.report.integrity import seal

        directory.mkdir(parents=True, exist_ok=True)
        target = directory / RESULTS_FILENAME
        tmp = directory / f".{RESULTS_FILENAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(seal(self.to_dict()), indent=2, sort_keys=False, default=str) + "\n",
                       encoding="utf-8")
        os.replace(tmp, target)
        return target


def _operator() -> str:
    for var in ("DRILL_OPERATOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_commit(path: Path) -> str | None:
    """The commit of the repository holding the drills, with `-dirty` when it has local changes."""
    return git_commit_and_note(path)[0]


def git_commit_and_note(path: Path) -> tuple[str | None, str | None]:
    """(the commit of the drills' repository, or None; and then why there is none, said so a reader can act)."""
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            error = " ".join(commit.stderr.split())
            if "not a git repository" in error:
                return None, f"{path} is not in a git repository"
            if "HEAD" in error and ("unknown revision" in error or "ambiguous argument" in error):
                return None, f"the git repository at {path} has no commit yet"
            return None, f"git rev-parse failed in {path}: {error[:200] or f'exit code {commit.returncode}'}"
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except FileNotFoundError:
        return None, "git is not installed on this machine"
    except subprocess.TimeoutExpired:
        return None, f"git did not answer within 10 s in {path}"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git could not be run in {path}: {exc}"
    head = commit.stdout.strip()
    return (f"{head}-dirty" if dirty else head), None
