"""One running drill scenario: the `drill` fixture every sentence acts through.

DrillScenario is a thin front: each method hands the sentence to the collaborator that owns it,
over one shared ScenarioState (state.py):
- Stores (stores.py): declared, seeded, SQL;             - Backups (backups.py): taken, written, found;
- Recovery (recovery.py): RPO markers, disaster, restore, RPO;
- Safety (safety.py): rollback policy, safety copies, planted failures;
- LiveStores (live_stores.py): the live stores' safety net, armed before a change, checked at the end;
- PointInTimeRecovery (point_in_time.py);                - WholeSystem (whole_system.py): waves, health checks;
- Verification (verification.py): fingerprints, counts;  - Targets (targets.py): RTO/RPO targets;
- Freshness (freshness.py): a latest backup's age;       - SelfTest (self_test.py): checks proven to bite.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drill.cleanup import CleanupStack
from drill.clock import RecoveryClock
from drill.config import Config
from drill.evidence import BackupEvidence
from drill.fingerprint import Fingerprint
from drill.progress import Reporter
from drill.redact import redact_text
from drill.results import ErrorResult, PhaseResult, ScenarioResult, iso
from drill.scenario.backups import Backups
from drill.scenario.backups import date_of as _date_of
from drill.scenario.freshness import Freshness
from drill.scenario.live_stores import LiveStores
from drill.scenario.point_in_time import PointInTimeRecovery
from drill.scenario.recovery import Recovery
from drill.scenario.safety import Safety
from drill.scenario.self_test import SelfTest
from drill.scenario.state import RestoreRecord, ScenarioState
from drill.scenario.stores import Stores
from drill.scenario.targets import Targets
from drill.scenario.verification import Verification
from drill.scenario.whole_system import WholeSystem
from drill.stores.base import BackupArtifact, Store

__all__ = ["DrillScenario", "RestoreRecord", "ScenarioState", "_date_of"]


class DrillScenario:
    def __init__(self, config: Config, result: ScenarioResult, reporter: Reporter, tags: set[str]) -> None:
        self.state = ScenarioState(config, result, reporter, RecoveryClock(reporter.phase_start, reporter.phase_end))
        self.targets = Targets(self.state, tags)  # first: a bad tag fails before anything else exists
        self.live = LiveStores(self.state)
        self.store_ops = Stores(self.state, self.live)
        self.backup_ops = Backups(self.state)
        self.safety = Safety(self.state, self.live)
        self.recovery = Recovery(self.state, self.safety, self.live)
        self.point_in_time = PointInTimeRecovery(self.state, self.safety, self.recovery)
        self.verification = Verification(self.state)
        self.whole_system = WholeSystem(self.state, self.recovery, self.verification)
        self.freshness = Freshness(self.state)
        self.self_test = SelfTest(self.state)

    # -- the shared state, as plugins and step modules read it -----------------------------------------

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def result(self) -> ScenarioResult:
        return self.state.result

    @property
    def reporter(self) -> Reporter:
        return self.state.reporter

    @property
    def cleanup(self) -> CleanupStack:
        return self.state.cleanup

    @property
    def clock(self) -> RecoveryClock:
        return self.state.clock

    @property
    def stores(self) -> dict[str, Store]:
        return self.state.stores

    @property
    def backups(self) -> dict[str, list[BackupArtifact]]:
        return self.state.backups

    @property
    def current_line(self) -> int:
        return self.state.current_line

    @current_line.setter
    def current_line(self, line: int) -> None:  # set by the plugin before each step
        self.state.current_line = line

    def store(self, name: str) -> Store:
        return self.state.store(name)

    def record_backup(self, artifact: BackupArtifact, *, evidence: BackupEvidence | None = None) -> None:
        """A backup found or fetched outside the scenario's own steps becomes the store's latest backup."""
        self.state.record_backup(artifact, evidence=evidence)

    def latest_backup(self, name: str) -> BackupArtifact:
        return self.state.latest_backup(name)

    # -- stores, markers and backups ---------------------------------------------------------------------

    def declare(self, kind_name: str, name: str, *, options: dict[str, Any] | None = None) -> Store:
        return self.store_ops.declare(kind_name, name, options=options)

    def seed(self, name: str, count: int, unit: str) -> None:
        self.store_ops.seed(name, count, unit)

    def run_sql(self, name: str, text: str) -> None:
        self.store_ops.run_sql(name, text)

    def start_writer(self, name: str, interval_text: str) -> None:
        self.recovery.start_writer(name, interval_text)

    def stop_writer(self, name: str) -> None:
        self.recovery.stop_writer(name)

    def wait(self, duration_text: str) -> None:
        self.recovery.wait(duration_text)

    def take_backup(self, name: str) -> BackupArtifact:
        return self.backup_ops.take(name)

    def take_backup_into_bucket(self, name: str, bucket: str) -> BackupArtifact:
        return self.backup_ops.take_into_bucket(name, bucket)

    def save_runbook_dump(self, name: str, path_template: str) -> Path:
        return self.backup_ops.save_runbook_dump(name, path_template)

    def use_latest_backup(self, name: str, pattern: str) -> BackupArtifact:
        return self.backup_ops.use_latest(name, pattern)

    def find_backup(self, name: str, pattern: str) -> BackupArtifact:
        """The newest backup made outside drill that a glob matches, read by the store's kind (not yet used)."""
        return self.backup_ops.find(name, pattern)

    def use_found_base_backup(self, name: str, artifact: BackupArtifact, wal: BackupArtifact | None) -> None:
        self.point_in_time.use_found_base_backup(name, artifact, wal)

    # -- disaster, recovery, rollback and point in time --------------------------------------------------

    def lose(self, name: str) -> None:
        self.recovery.lose(name)

    def restore(self, name: str, into: str | None = None) -> Store:
        return self.recovery.restore(name, into)

    def restore_from_versions(self, name: str) -> Store:
        """Restore the object generations that were current when the latest backup was taken."""
        self.backup_ops.use_object_versions(name)
        return self.recovery.restore(name)

    def set_rollback_policy(self, policy: str) -> None:
        self.safety.set_policy(policy)

    def set_restore_timeout(self, name: str, duration_text: str) -> None:
        self.safety.set_restore_timeout(name, duration_text)

    def restore_fails(self, name: str, cause_text: str | None) -> None:
        self.safety.restore_fails(name, cause_text, self.recovery.restore)

    def roll_back(self, name: str) -> None:
        self.safety.roll_back(name)

    def assert_rolled_back(self, name: str) -> None:
        self.safety.assert_rolled_back(name)

    def take_base_backup(self, name: str) -> BackupArtifact:
        return self.point_in_time.take_base_backup(name)

    def restore_to_point(self, name: str, when: str) -> Store:
        return self.point_in_time.restore_to_point(name, when)

    def assert_markers_at_point(self, name: str) -> None:
        self.point_in_time.assert_markers_at_point(name)

    # -- whole system and health -------------------------------------------------------------------------

    def restore_whole_system(self) -> None:
        self.whole_system.restore()

    def check_store_rto(self, name: str, duration_text: str) -> None:
        self.whole_system.check_store_rto(name, duration_text)

    def start_health_service(self) -> str:
        return self.whole_system.start_health_service()

    def check_endpoint(self, url: str, status: int) -> None:
        self.whole_system.check_endpoint(url, status)

    def check_query(self, name: str, query: str, expected: str) -> None:
        self.whole_system.check_query(name, query, expected)

    def check_query_at_least(self, name: str, query: str, minimum: int) -> None:
        self.whole_system.check_query_at_least(name, query, minimum)

    # -- verification and targets ------------------------------------------------------------------------

    def expected_fingerprint(self, name: str, source: str | None) -> tuple[Fingerprint, BackupArtifact]:
        return self.verification.expected_fingerprint(name, source)

    def assert_matches(self, name: str, source: str | None = None) -> None:
        self.verification.assert_matches(name, source)

    def assert_count(self, name: str, count: int, unit: str, part: str | None = None, *,
                     at_least: bool = False) -> None:
        self.verification.assert_count(name, count, unit, part, at_least=at_least)

    def assert_count_expiring(self, name: str, count: int, unit: str, *, at_least: bool = False) -> None:
        self.verification.assert_count_expiring(name, count, unit, at_least=at_least)

    def assert_count_matching(self, name: str, count: int, unit: str, pattern: str, *,
                              at_least: bool = False) -> None:
        self.verification.assert_count_matching(name, count, unit, pattern, at_least=at_least)

    def check_backup_age_in(self, name: str, pattern: str, duration_text: str) -> None:
        self.freshness.check_glob(name, pattern, duration_text)

    def check_backup_age(self, name: str, duration_text: str) -> None:
        self.freshness.check_latest(name, duration_text)

    def prove_checks_bite(self) -> None:
        """After the steps passed: with self_test = true, plant a fault in each restored copy and require it caught."""
        self.self_test.prove()

    def assert_holds_object(self, name: str, object_name: str) -> None:
        self.verification.assert_holds_object(name, object_name)

    def verify(self, name: str, check: Callable[[Store], None]) -> None:
        """A kind's own verification sentence: `check` runs on the store as a verify phase, like any check."""
        self.verification.verify(name, check)

    def measured(self, metric: str) -> float | None:
        return self.targets.measured(metric)

    def unmeasured_reason(self, metric: str) -> str:
        return self.targets.unmeasured_reason(metric)

    def check_target(self, metric: str, duration_text: str, line: int) -> None:
        self.targets.check(metric, duration_text, line)

    def enforce_targets(self, raise_on_miss: bool) -> None:
        self.targets.enforce(raise_on_miss)

    # -- end ---------------------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.live.ended

    def end(self) -> list[str]:
        """The end of the scenario's steps, passed, failed or interrupted: the rollbacks policy `always` asks for,
        then the final check of every live store (put back when it ended worse than it began). Returns what
        fails the scenario: live stores that were not as they should be (once)."""
        return self.live.end(self.safety.close)

    def close(self) -> list[str]:
        """End the scenario if its steps did not (interrupted), remove throwaway backups and everything
        provisioned; the errors."""
        state = self.state
        if not self.live.ended:  # interrupted before the end of its steps: the final check still runs
            for problem in self.end():
                state.result.errors.append(ErrorResult("LiveStoreNotRestored", redact_text(problem)))
        for path in state.throwaway_backups:
            if path.is_dir():  # a backup that is a directory (a GCS archive)
                shutil.rmtree(path, ignore_errors=True)
            for candidate in (path, path.with_name(path.name + ".manifest.json")):
                with contextlib.suppress(OSError):
                    candidate.unlink()
        cleanup_errors = state.cleanup.run()
        self.live.release(keep=bool(cleanup_errors))  # journals and references stay when a target was not dropped
        errors = [*self.live.end_errors, *cleanup_errors]
        state.result.phases = [PhaseResult(p.name, p.store, iso(p.started_at), iso(p.ended_at), p.seconds,
                                           p.in_rto, p.status) for p in state.clock.phases]
        if state.result.rto_seconds is None:
            state.result.rto_seconds = self.measured("rto")
        elif self.measured("rto") is None:
            state.result.rto_seconds = None  # a restore failed after an earlier one was verified
        self.recovery.close()
        return errors
