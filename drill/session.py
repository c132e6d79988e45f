"""A drill run: configuration, the run's results, and what every scenario shares."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from drill import __version__
from drill.config import Config
from drill.errors import DrillError
from drill.progress import Reporter
from drill.results import RunResult, git_commit, iso


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
        self.run = RunResult(
            run_id=run_id or new_run_id(), started_at=iso(self.started) or "", drill_version=__version__,
            git_commit=git_commit(config.base_dir), config_path=str(config.path) if config.path else None,
            config_digest=config.digest(), profile=config.profile,
            command=[os.path.basename(sys.argv[0]), *sys.argv[1:]],
            controls={c.id: {"title": c.title, "every_seconds": c.every} for c in config.controls.values()},
        )

    @property
    def run_dir(self) -> Path | None:
        return None if self.report_dir is None else self.report_dir / self.run.run_id

    def finish(self) -> Path | None:
        """Settle every scenario's status and the run's, then write results.json (if reporting)."""
        now = time.time()
        for scenario in self.run.scenarios:
            if scenario.status == "running":
                scenario.status = "interrupted" if self.interrupted else "error"
            for step in scenario.steps:
                if step.status == "running":
                    step.status = "interrupted" if self.interrupted else "failed"
            if scenario.ended_at is None:
                scenario.ended_at = iso(now)
        statuses = {s.status for s in self.run.scenarios}
        if self.interrupted:
            self.run.status = "interrupted"
        elif not self.run.scenarios:
            self.run.status = "error"
        elif (statuses <= {"passed", "skipped"} and all(s.targets_met for s in self.run.scenarios)
              and all(r.ok for r in self.run.repairs)):
            self.run.status = "passed"
        else:
            self.run.status = "failed"
        self.run.ended_at = iso(now)
        self.run.seconds = now - self.started
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
        try:
            record_run(self.report_dir, path, signer)
        except (DrillError, OSError) as exc:
            self.reporter.line(f"drill: warning: run not added to the history: {exc}")
        return path
