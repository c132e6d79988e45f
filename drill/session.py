"""A drill run: configuration, the run's results, and what every scenario shares."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from drill import __version__
from drill.config import Config
from drill.errors import DrillError
from drill.progress import Reporter
from drill.results import RunResult, ScenarioResult, git_commit_and_note, iso

if TYPE_CHECKING:
    from drill.parallel import ShardRequest


PLACEHOLDER_INDEX = 1 << 30  # xdist: the place of a scenario whose worker died before reporting it (last)


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


class DrillSession:
    def __init__(self, config: Config, reporter: Reporter, *, report_dir: Path | None,
                 run_id: str | None = None) -> None:
        self.config = config
        self.reporter = reporter
        self.report_dir = report_dir
        self.started = time.time()
        self.interrupted = False
        commit, commit_note = git_commit_and_note(config.base_dir)
        self.shard_request: ShardRequest | None = None  # --shard I/N (drill.parallel)
        self._worker_results: list[tuple[int, ScenarioResult]] = []  # xdist: (collection index, result)
        self.sent: set[str] = set()  # on an xdist worker: node ids of the scenarios sent to the controller
        self.run = RunResult(
            run_id=run_id or new_run_id(), started_at=iso(self.started) or "", drill_version=__version__,
            git_commit=commit, git_commit_note=commit_note, config_path=str(config.path) if config.path else None,
            config_digest=config.digest(), profile=config.profile,
            command=[os.path.basename(sys.argv[0]), *sys.argv[1:]],
            controls={c.id: {"title": c.title, "every_seconds": c.every} for c in config.controls.values()},
        )

    @property
    def run_dir(self) -> Path | None:
        return None if self.report_dir is None else self.report_dir / self.run.run_id

    def add_worker_result(self, index: int, result: ScenarioResult) -> None:
        """A scenario an xdist worker ran; `index` is its place in the collection (the serial run's order).

        A scenario reported twice (xdist may announce a worker's end twice after an interrupt) is kept once; a
        result the worker sent wins over the placeholder for a worker that died (index PLACEHOLDER_INDEX)."""
        known = {r.nodeid: i for i, r in self._worker_results}
        if result.nodeid in known and index >= PLACEHOLDER_INDEX and known[result.nodeid] < PLACEHOLDER_INDEX:
            return
        self._worker_results = [(i, r) for i, r in self._worker_results if r.nodeid != result.nodeid]
        self._worker_results.append((index, result))
        self._worker_results.sort(key=lambda pair: pair[0])
        self.run.scenarios = [r for _, r in self._worker_results]

    def finish(self) -> Path | None:
        """Settle every scenario's status and the run's, then write results.json (if reporting)."""
        now = time.time()
        self.settle_scenarios(now)
        statuses = {s.status for s in self.run.scenarios}
        if self.interrupted:
            self.run.status = "interrupted"
        elif not self.run.scenarios:
            self.run.status = "passed" if self.run.shard is not None else "error"  # a share may be empty
        elif (statuses <= {"passed", "skipped"} and all(s.targets_met for s in self.run.scenarios)
              and all(r.ok for r in self.run.repairs)):
            self.run.status = "passed"
        else:
            self.run.status = "failed"
        self.run.ended_at = iso(now)
        self.run.seconds = now - self.started
        return self.write()

    def settle_scenarios(self, now: float) -> None:
        """A scenario (and step) still running when the run ends was interrupted, or failed."""
        for scenario in self.run.scenarios:
            if scenario.status == "running":
                scenario.status = "interrupted" if self.interrupted else "error"
            for step in scenario.steps:
                if step.status == "running":
                    step.status = "interrupted" if self.interrupted else "failed"
            if scenario.ended_at is None:
                scenario.ended_at = iso(now)

    def write(self) -> Path | None:
        """Write results.json (if reporting) and add the run to the history; a shard's run waits for the merge."""
        if self.run_dir is None or self.report_dir is None:
            return None
        path = self.run.write(self.run_dir)
        from drill.report.history import record_run
        from drill.report.signing import load_signing_key, sign_results

        signer = None
        try:  # the results are written whatever happens to their signature and the history
            signer = load_signing_key(self.config)
            if signer is not None:
                sign_results(path, signer)
        except (DrillError, OSError) as exc:
            self.reporter.line(f"drill: warning: results not signed: {exc}")
        if self.run.shard is not None:
            return path  # `drill report merge` adds the merged run, once, when every share is in
        from drill.report.history_store import history_store

        try:  # the results are written whatever happens to the history
            record_run(self.report_dir, path, history_store(self.config, self.report_dir), signer)
        except (DrillError, OSError) as exc:
            self.reporter.line(f"drill: warning: run not added to the history: {exc}")
        return path
