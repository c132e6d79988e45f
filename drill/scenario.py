"""One running drill scenario: its stores, backups, writers, clock, targets and evidence.

Steps are thin and call methods here; this is where a drill's semantics live:
- the RTO clock starts at the first disaster (or at the first restore when nothing was lost)
  and stops at the last successful verification of a restored store;
- RPO is the disaster time minus the recovery point: the newest marker that survived the
  restore, or, when no marker writer ran, the backup's consistent time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drill import faults, health, pitr, rollback, system
from drill.cleanup import CleanupStack, deferred_sigint
from drill.clock import RecoveryClock
from drill.config import Config
from drill.durations import format_duration, parse_duration
from drill.errors import BackupError, DrillError, StoreError, TargetMissed, VerificationError
from drill.fingerprint import Fingerprint, compare
from drill.markers import MarkerWriter
from drill.names import check_name
from drill.pause import pause_point
from drill.progress import Reporter
from drill.provision.factory import provision
from drill.redact import redact_text
from drill.results import ErrorResult, PhaseResult, ScenarioResult, TargetResult, iso
from drill.safety_net import SafetyNet
from drill.stores.base import KIND_NAMES, UNITS, BackupArtifact, Store
from drill.targets import targets_from_tags


@dataclass
class RestoreRecord:
    source: str  # the store whose backup was restored
    target: str  # the store that now holds the restored data
    artifact: BackupArtifact
    started_at: float
    recovery_point: float | None = None
    rpo_method: str | None = None


class DrillScenario:
    def __init__(self, config: Config, result: ScenarioResult, reporter: Reporter, tags: set[str]) -> None:
        self.config = config
        self.result = result
        self.reporter = reporter
        self.cleanup = CleanupStack()
        self.clock = RecoveryClock(reporter.phase_start, reporter.phase_end)
        self.stores: dict[str, Store] = {}
        self.backups: dict[str, list[BackupArtifact]] = {}
        self.writers: dict[str, MarkerWriter] = {}
        self.disaster_at: dict[str, float] = {}
        self.restores: dict[str, RestoreRecord] = {}
        # The live stores' safety net (drill.safety_net): references to put them back from, checked at the end.
        self.net = SafetyNet(config.backup_dir, lambda text: reporter.info(text, force=True))
        self.ended = False  # end() ran: rollbacks (policy always) and the final check of the live stores
        self.end_errors: list[str] = []
        self.throwaway_backups: list[Path] = []
        # Fingerprints of backups this scenario wrote to a path (e.g. a runbook-style dump found later by glob).
        self.fingerprints_by_path: dict[Path, Fingerprint] = {}
        self.current_line = 0  # line of the step being run (set by the plugin), for target sources
        # Rollback (drill.rollback): the policy, copies kept until the end (policy always), rollbacks done.
        self.rollback_policy = config.rollback
        self.kept: dict[str, rollback.SafetyCopy] = {}
        self.pending_rollbacks: dict[str, rollback.SafetyCopy] = {}
        self.rolled_back: dict[str, dict[str, Any]] = {}
        self.planted: dict[str, str] = {}  # store -> fault planted into its next restore (drill.faults)
        self.restore_timeouts: dict[str, float] = {}
        # Point-in-time recovery (drill.pitr): base backups, WAL position at the disaster, targets reached.
        self.base_backups: dict[str, list[BackupArtifact]] = {}
        self.disaster_lsn: dict[str, str] = {}
        self.pitr_targets: dict[str, float] = {}
        self.health_service: health.HealthService | None = None
        # The last restore failed (or was interrupted): the recovery time is not measured, a target on it is missed.
        self.recovery_failed = False
        self.result.targets = targets_from_tags(tags, config)
        self.result.evidence.setdefault("stores", {})
        self.result.evidence.setdefault("backups", [])
        self.result.evidence.setdefault("fingerprints", {})
        self.result.evidence.setdefault("markers", {})

    # -- stores -----------------------------------------------------------------------------------------

    def declare(self, kind_name: str, name: str, *, archive_wal: bool = False) -> Store:
        kind = KIND_NAMES[kind_name]
        check_name(name, "store name")
        if name in self.stores:
            if self.stores[name].kind != kind:
                raise StoreError(f"store {name!r} is declared again as a {kind_name} store; it is a "
                                 f"{self.stores[name].kind} store in this scenario: give the other store its own name")
            return self.stores[name]
        store_config = self.config.store(name, kind)
        if archive_wal:  # the sentence says what `pitr = true` in drill.toml would
            if kind != "postgres" or store_config.provision != "local":
                raise StoreError(f"WAL archiving (point-in-time recovery) is available for local PostgreSQL stores "
                                 f"only; {name!r} is a {store_config.provision} {kind} store")
            store_config = dataclasses.replace(store_config, pitr=True)
        with self.clock.phase("provision", name):
            store = provision(store_config, self.cleanup, self.reporter.info)
        self.cleanup.push(f"close {name!r}", store.close)
        self.stores[name] = store
        self.result.evidence["stores"][name] = store.describe()
        self._check_interrupted_restore(store)
        return store

    def _check_interrupted_restore(self, store: Store) -> None:
        """A journal left by a drill killed mid-restore: repair the store (live) or report it (throwaway)."""
        found = rollback.interrupted(self.config.backup_dir, store.name)
        if found is None:
            return
        if store.config.is_live:
            self.reporter.info(f"{store.name}: {found.describe()}; rolling it back from the safety copy", force=True)
            outcome = rollback.repair(store, found, self.reporter.info)
        else:
            outcome = {"interrupted": found.describe(), "outcome": "reported",
                       "detail": "the half-restored store was a throwaway local server, removed with it; "
                                 "this run provisioned a new one"}
            rollback.forget(found)
        self.reporter.info(f"{store.name}: interrupted restore {outcome['outcome']} ({found.describe()})", force=True)
        self.result.evidence.setdefault("interrupted_restores", {})[store.name] = outcome

    def store(self, name: str) -> Store:
        try:
            return self.stores[name]
        except KeyError:
            raise StoreError(f"store {name!r} is not declared in this scenario: add a step such as "
                             f"`Given the PostgreSQL store \"{name}\"` before using it") from None

    def _check_unit(self, store: Store, unit: str) -> None:
        singular = unit.rstrip("s")
        if singular != store.unit.rstrip("s"):
            kind = next(k for k, v in KIND_NAMES.items() if v == store.kind)
            raise StoreError(f"a {kind} store holds {UNITS[store.kind]}, not {unit}: write "
                             f"`{UNITS[store.kind]}` for {store.name!r}")

    def seed(self, name: str, count: int, unit: str) -> None:
        store = self.store(name)
        self._check_unit(store, unit)
        scaled = self.config.scaled(count)
        store.require_writes("seed")  # refused before the safety net copies anything
        self._arm(store, "seeded")
        self.net.changed(store, "written", f"seeded with {scaled} {store.unit}")
        with self.clock.phase("seed", name):
            store.seed(scaled, self.reporter.info)
        self.result.evidence.setdefault("seeded", {})[name] = scaled

    # -- RPO markers ------------------------------------------------------------------------------------

    def start_writer(self, name: str, interval_text: str) -> None:
        store = self.store(name)
        store.require_writes("write RPO markers into")
        if name in self.writers:
            raise StoreError(f"writes to {name!r} are already being recorded")
        writer = MarkerWriter(store.markers(), parse_duration(interval_text), name)
        self.cleanup.push(f"stop the marker writer of {name!r}", lambda: _quietly(writer.stop))
        writer.start()
        self.writers[name] = writer
        self.reporter.info(f"recording writes to {name} every {format_duration(writer.interval)}", force=True)

    def stop_writer(self, name: str) -> None:
        writer = self.writers.get(name)
        if writer is None:
            raise StoreError(f"no writes to {name!r} are being recorded: add "
                             f"`Given writes to \"{name}\" are recorded every 1 second` first")
        writer.stop()
        self.result.evidence["markers"][name] = writer.evidence()

    def wait(self, duration_text: str) -> None:
        seconds = parse_duration(duration_text)
        self.reporter.info(f"waiting {format_duration(seconds)}", force=True)
        time.sleep(seconds)  # the scenario asked for time to pass (e.g. writes to accumulate)

    # -- backups ----------------------------------------------------------------------------------------

    def take_backup(self, name: str) -> BackupArtifact:
        store = self.store(name)
        with self.clock.phase("backup", name):
            artifact = store.backup(self.config.backup_dir / name, self.reporter.info)
        self._record_backup(store, artifact)
        return artifact

    def save_runbook_dump(self, name: str, path_template: str) -> Path:
        """A gzip'd plain-SQL dump, as the seed runbook's cron makes, at a path with {timestamp}."""
        store = self.store(name)
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        path = Path(path_template.replace("{timestamp}", stamp))
        path = path if path.is_absolute() else self.config.base_dir / path
        dump = getattr(store, "dump_sql_gz", None)
        if dump is None:
            raise StoreError(f"a gzip'd SQL dump only applies to PostgreSQL stores, not {store.kind}")
        with self.clock.phase("backup", name):
            artifact: BackupArtifact = dump(path, self.reporter.info)
        if artifact.fingerprint is not None:
            self.fingerprints_by_path[path.resolve()] = artifact.fingerprint
        self._record_backup(store, artifact, keep_in_list=False)
        return path

    def _record_backup(self, store: Store, artifact: BackupArtifact, keep_in_list: bool = True) -> None:
        if keep_in_list:
            self.backups.setdefault(store.name, []).append(artifact)
        if not store.config.is_live:
            self.throwaway_backups.append(artifact.path)
        else:
            _write_manifest(artifact)
        self.result.evidence["backups"].append(artifact.evidence())

    def use_latest_backup(self, name: str, pattern: str) -> BackupArtifact:
        """The newest file matching a glob, dated by its name (…_20240115_143000…) or its mtime."""
        self.store(name)
        full = pattern if os.path.isabs(pattern) else str(self.config.base_dir / pattern)
        matches = [Path(p) for p in glob.glob(full) if Path(p).is_file()]
        if not matches:
            raise BackupError(f"no backup of {name!r} matches {pattern!r} (searched {full})")
        dated = sorted(((_date_of(p), p) for p in matches), key=lambda pair: pair[0])
        when, newest = dated[-1]
        artifact = BackupArtifact(
            id=newest.name, store=name, kind=self.stores[name].kind, format="external", path=newest,
            sha256=None, size=newest.stat().st_size, created_at=when, consistent_at=when,
            fingerprint=self.fingerprints_by_path.get(newest.resolve()), source="external")
        self.backups.setdefault(name, []).append(artifact)
        self.result.evidence["backups"].append(artifact.evidence())
        self.reporter.info(f"latest backup of {name}: {newest} (dated {iso(when)})", force=True)
        return artifact

    def latest_backup(self, name: str) -> BackupArtifact:
        found = self.backups.get(name)
        if not found:
            raise BackupError(f"no backup of {name!r} in this scenario: take one first "
                              f"(`Given a backup of \"{name}\" is taken`) or name one "
                              f"(`Given the latest backup of \"{name}\" in \"backups/{name}_*.sql.gz\"`)")
        return found[-1]

    # -- disaster and recovery --------------------------------------------------------------------------

    def lose(self, name: str) -> None:
        store = self.store(name)
        store.require_destructive("lose")  # refuse before the clock starts or anything is touched
        self._arm(store, "lost")
        writer = self.writers.get(name)
        if writer is not None and writer.stopped_at is None:
            self.stop_writer(name)  # the writer runs until the disaster
        archive = getattr(store, "pitr", None)
        if archive is not None:  # "just before the disaster" is this WAL position, exactly
            self.disaster_lsn[name] = archive.current_lsn()
        self.clock.start()
        self.disaster_at[name] = time.time()
        self.net.changed(store, "lost", "lost")
        with self.clock.phase("disaster", name):
            store.lose()
        pause_point(f"disaster:{name}")

    def restore(self, name: str, into: str | None = None) -> Store:
        if into is not None:
            check_name(into, "restore target")
        store = self.store(name)
        artifact = self.latest_backup(name)
        if into is not None and into in self.stores:
            raise StoreError(f"cannot restore into {into!r}: that name is already a store of this scenario")
        # In place means in place: a live store is restored into itself, which needs `destructive = true`
        # (refused here, before anything is touched); only `into` restores into a new target.
        if into is None:
            store.require_in_place_restore()
            self._arm(store, "overwritten by a restore")
        else:
            self.net.add_target(store, into)  # journaled first: a drill killed now leaves it to `drill repair`
        self.clock.start()  # a restore with no disaster before it starts the clock itself
        started = time.time()
        if into is None:
            self.net.changed(store, "overwritten", f"restored in place from backup {artifact.id}")
        target = self._guarded_restore(name, store, into is None,
                                       lambda: self._restore_with_faults(name, store, artifact, into), into or name)
        if into is None:
            self.net.restored(store, artifact)
        target_name = into or name
        if into is not None:
            self.stores[into] = target
            self.cleanup.push(f"close {into!r}", target.close)
        record = RestoreRecord(source=name, target=target_name, artifact=artifact, started_at=started)
        self.restores[target_name] = record
        self._measure_rpo(record, target)
        return target

    # -- rollback and planted failures (drill.rollback, drill.faults) -----------------------------------

    def set_rollback_policy(self, policy: str) -> None:
        self.rollback_policy = rollback.check_policy(policy, f"step at line {self.current_line}")
        self.result.evidence.setdefault("rollback", {})["policy"] = self.rollback_policy

    def set_restore_timeout(self, name: str, duration_text: str) -> None:
        self.store(name)
        self.restore_timeouts[name] = parse_duration(duration_text)

    def _guarded_restore(self, name: str, store: Store, in_place: bool, action: Callable[[], Store],
                         phase_store: str) -> Store:
        """Keep a safety copy (per the rollback policy), run the restore, roll back and verify when it fails."""
        copy = None
        if in_place and name in self.pending_rollbacks:
            copy = self.pending_rollbacks.pop(name)  # policy always: back to the state before the first restore
        elif in_place and self.rollback_policy != "never":
            with self.clock.phase("safety-copy", name):
                copy = rollback.keep(store, self.config.backup_dir, self.reporter.info)
            self.kept[name] = copy
            self.result.evidence.setdefault("rollback", {})[name] = {"policy": self.rollback_policy,
                                                                      "safety_copy": copy.evidence()}
        try:
            with self.clock.phase("restore", phase_store):
                target = action()
        except BaseException as exc:
            self.recovery_failed = True  # no RTO until a later restore succeeds
            if copy is None or not isinstance(exc, Exception):
                raise
            self._roll_back_after_failure(name, store, copy, exc)
            raise AssertionError("unreachable") from exc  # _roll_back_after_failure always raises
        self.recovery_failed = False
        if copy is not None:
            if self.rollback_policy == "always":
                self.pending_rollbacks[name] = copy  # rolled back when the scenario ends
            else:
                rollback.finish(copy)
        return target

    def _roll_back_after_failure(self, name: str, store: Store, copy: rollback.SafetyCopy, cause: Exception) -> None:
        reason = redact_text(str(cause))
        try:
            with self.clock.phase("rollback", name):
                outcome = rollback.roll_back(store, copy, self.reporter.info)
        except Exception as failed:
            self.result.evidence["rollback"][name].update({"cause": reason, "verified": False,
                                                           "error": redact_text(str(failed))})
            raise StoreError(f"the restore of {name!r} failed ({reason}) and so did its rollback: "
                             f"{redact_text(str(failed))}\nthe safety copy and journal are kept in "
                             f"{copy.directory}") from cause
        rollback.finish(copy)
        outcome["cause"] = reason
        self.rolled_back[name] = outcome
        self.result.evidence["rollback"][name].update(outcome)
        self.reporter.info(f"{name} rolled back to its state before the restore (verified)", force=True)
        raise StoreError(f"the restore of {name!r} failed: {reason}\n{name!r} was rolled back to its state before "
                         f"the restore, and its fingerprint matches the one taken then") from cause

    def _restore_with_faults(self, name: str, store: Store, artifact: BackupArtifact, into: str | None) -> Store:
        cause = self.planted.get(name)
        timeout = self.restore_timeouts.get(name, store.config.restore_timeout)
        if cause == "timeout":
            timeout = faults.TIMEOUT_FAULT_SECONDS
        scratch = rollback.state_dir(self.config.backup_dir, name) / "faults"
        with contextlib.ExitStack() as stack:
            stack.callback(lambda: _rmtree(scratch))
            if cause == "corrupt":
                artifact = faults.corrupt_copy(artifact, scratch)
            elif cause == "killed":
                stack.enter_context(faults.killed_during_restore(store))
            elif cause == "full-disk":
                stack.enter_context(faults.small_disk(store, scratch))

            def run() -> Store:
                pause_point(f"restore:{name}")
                return store.restore(artifact, into, self.reporter.info)

            if timeout is not None:
                return faults.run_with_timeout(run, timeout, faults.abort_postgres_restore(store),
                                               f"the restore of {name!r}")
            return run()

    def restore_fails(self, name: str, cause_text: str | None) -> None:
        """Plant a failure into the next restore of `name`, run it, and require that it fails."""
        cause = faults.cause_of(cause_text)
        self.planted[name] = cause
        try:
            self.restore(name)
        except DrillError as exc:
            if isinstance(exc, faults.FaultError) or isinstance(exc.__cause__, faults.FaultError):
                raise  # the fault was not planted: that is no proof of anything
            self.result.evidence.setdefault("planted_failures", {})[name] = {
                "fault": cause, "error": redact_text(str(exc)), "rolled_back": name in self.rolled_back}
            self.reporter.info(f"the restore of {name} failed as planted ({cause})", force=True)
            return
        finally:
            self.planted.pop(name, None)
        raise VerificationError(f"the planted fault ({cause_text or 'the backup is corrupt'}) did not make the "
                                f"restore of {name!r} fail")

    def roll_back(self, name: str) -> None:
        """Roll a store back now from the copy kept before its restore (rollback policy always)."""
        store = self.store(name)
        copy = self.pending_rollbacks.pop(name, None)
        if copy is None:
            raise StoreError(f"{name!r} has no safety copy to roll back to: set `Given the rollback policy is always` "
                             f"before its restore (on-failure keeps the copy only while the restore runs)")
        self.net.changed(store, "overwritten", "rolled back to its state before the restore")
        with self.clock.phase("rollback", name):
            outcome = rollback.roll_back(store, copy, self.reporter.info)
        rollback.finish(copy)
        self.rolled_back[name] = outcome
        self.result.evidence.setdefault("rollback", {}).setdefault(name, {}).update(outcome)

    def assert_rolled_back(self, name: str) -> None:
        store = self.store(name)
        if name not in self.rolled_back:
            failed = self.result.evidence.get("rollback", {}).get(name, {}).get("error")
            why = ("the rollback policy is never" if self.rollback_policy == "never"
                   else f"its rollback failed: {failed}" if failed
                   else "no restore of it failed and it was not rolled back")
            raise VerificationError(f"{name!r} was not rolled back: {why}")
        copy = self.kept[name]
        with self.clock.phase("verify", name):
            if copy.absent:
                if not rollback.store_is_absent(store):
                    raise VerificationError(f"{name!r} did not exist before the restore, but it exists after the "
                                            f"rollback")
                return
            assert copy.fingerprint is not None
            actual = store.fingerprint()
            differences = compare(copy.fingerprint, actual)
            self.result.evidence["fingerprints"][f"{name} (rollback)"] = {
                "before": copy.fingerprint.to_dict(), "after": actual.to_dict(),
                "differences": [d.to_dict() for d in differences]}
            if differences:
                listed = "\n  - ".join(d.message for d in differences)
                raise VerificationError(f"{name!r} does not match its state before the restore:\n  - {listed}")

    # -- point-in-time recovery (drill.pitr) ------------------------------------------------------------

    def _pitr(self, name: str) -> pitr.PitrCluster:
        store = self.store(name)
        archive = getattr(store, "pitr", None)
        if archive is None:
            raise StoreError(f"{name!r} does not archive its WAL, so it cannot be recovered to a point in time: set "
                             f"`pitr = true` under [stores.{name}] in drill.toml (local PostgreSQL stores)")
        assert isinstance(archive, pitr.PitrCluster)
        return archive

    def take_base_backup(self, name: str) -> BackupArtifact:
        archive = self._pitr(name)
        store = self.store(name)
        with self.clock.phase("backup", name):
            artifact = archive.base_backup(store, self.reporter.info)
        self.base_backups.setdefault(name, []).append(artifact)
        self.result.evidence["backups"].append(artifact.evidence())
        return artifact

    def restore_to_point(self, name: str, when: str) -> Store:
        archive = self._pitr(name)
        store = self.store(name)
        lsn = None
        if when == "just before the disaster":
            if name not in self.disaster_at:
                raise StoreError(f"{name!r} has had no disaster to recover to just before: add "
                                 f"`When \"{name}\" is lost` first, or name a time")
            target_time, lsn = self.disaster_at[name], self.disaster_lsn.get(name)
        elif when.endswith(" before the disaster"):
            if name not in self.disaster_at:
                raise StoreError(f"{name!r} has had no disaster: add `When \"{name}\" is lost` first")
            target_time = self.disaster_at[name] - parse_duration(when.removesuffix(" before the disaster"))
        else:
            target_time = pitr.parse_point_in_time(when.strip('"'))
        candidates = [b for b in self.base_backups.get(name, []) if b.consistent_at <= target_time]
        if not candidates:
            raise BackupError(f"no base backup of {name!r} was taken before {iso(target_time)}: add "
                              f"`Given a base backup of \"{name}\" is taken` before that time")
        artifact = candidates[-1]
        writer = self.writers.get(name)
        if writer is not None and writer.stopped_at is None:
            self.stop_writer(name)  # the server is stopped for the recovery
        self.clock.start()
        started = time.time()

        def recover() -> Store:
            archive.recover_to(artifact, target_time, self.reporter.info, lsn=lsn)
            return store

        self._guarded_restore(name, store, True, recover, name)
        record = RestoreRecord(source=name, target=name, artifact=artifact, started_at=started)
        if writer is None:
            record.recovery_point, record.rpo_method = target_time, "recovery-target-time"
        self.restores[name] = record
        self.pitr_targets[name] = target_time
        self.result.evidence.setdefault("pitr", {})[name] = {
            "base_backup": artifact.id, "target_time": target_time, "target": iso(target_time),
            "target_lsn": lsn, "how": "recovery_target_lsn (exclusive)" if lsn else "recovery_target_time"}
        self._measure_rpo(record, store)
        return store

    def assert_markers_at_point(self, name: str) -> None:
        store = self.store(name)
        if name not in self.pitr_targets:
            raise StoreError(f"{name!r} was not recovered to a point in time in this scenario")
        writer = self.writers.get(name)
        if writer is None:
            raise StoreError(f"no writes to {name!r} were recorded: add `Given writes to \"{name}\" are recorded "
                             f"every 1 second` before its base backup")
        target = self.pitr_targets[name]
        with self.clock.phase("verify", name):
            present = {seq for seq, _ in pitr.markers_in(store)}
            before = [m for m in writer.written if m.written_at <= target]
            after = [m for m in writer.written if m.written_at > target]
            missing = [m.seq for m in before if m.seq not in present]
            # The one write in flight at the target time may commit just after it: it may be absent.
            if missing and before and missing == [before[-1].seq] and target - before[-1].written_at < 1.0:
                missing = []
            extra = [m.seq for m in after if m.seq in present]
            self.result.evidence["pitr"][name].update({
                "markers_before_target": len(before), "markers_after_target": len(after),
                "markers_present": len(present), "missing_before": missing, "present_after": extra})
            problems = []
            if missing:
                problems.append(f"{len(missing)} marker(s) written before the point in time are missing "
                                f"(seq {_ranges(missing)})")
            if extra:
                problems.append(f"{len(extra)} marker(s) written after the point in time are present "
                                f"(seq {_ranges(extra)})")
            if problems:
                raise VerificationError(f"{name!r} recovered to {iso(target)}: " + "; ".join(problems))
        self._verified(name)

    # -- whole system (drill.system) and health checks (drill.health) -----------------------------------

    def restore_whole_system(self) -> None:
        names = [n for n in self.stores if n in self.backups and n not in self.restores]
        if not names:
            raise BackupError("no store of this scenario has a backup to restore the system from: take backups first "
                              "(`Given a backup of \"userdb\" is taken`)")
        the_plan = system.plan(names, self.config)
        self.clock.start()
        self.result.evidence["system"] = {"plan": the_plan.evidence(), "stores": {}}

        def restore_one(name: str) -> None:
            self.restore(name)
            self.assert_matches(name)

        def elapsed() -> float:
            return self.clock.rto() or 0.0

        try:
            outcomes = system.run_waves(the_plan, restore_one, elapsed,
                                        lambda text: self.reporter.info(text, force=True))
        finally:
            self.result.evidence["system"]["seconds"] = elapsed()
        missed = []
        for outcome in outcomes:
            found = self.result.evidence["system"]["stores"][outcome.name] = outcome.evidence()
            target = self.store(outcome.name).config.rto
            if target is not None:
                found.update({"rto_target_seconds": target, "rto_target_source": f"stores.{outcome.name}.rto",
                              "rto_met": outcome.finished <= target})
                if outcome.finished > target:
                    missed.append(f"recovery time of {outcome.name!r} {format_duration(outcome.finished)} exceeds "
                                  f"its target {format_duration(target)} (stores.{outcome.name}.rto in drill.toml)")
        self.result.evidence["system"]["sum_of_store_seconds"] = sum(o.finished - o.started for o in outcomes)
        self.result.rto_seconds = self.clock.rto()
        if missed:
            raise TargetMissed("; ".join(missed))

    def check_store_rto(self, name: str, duration_text: str) -> None:
        stores = self.result.evidence.get("system", {}).get("stores", {})
        if name not in stores:
            raise StoreError(f"{name!r} was not restored with the whole system: add `When the whole system is "
                             f"restored` first")
        # A store's own target lives in the evidence: the scenario's targets (rto/rpo) stay the whole's.
        target, measured = parse_duration(duration_text), float(stores[name]["rto_seconds"])
        stores[name].update({"rto_target_seconds": target, "rto_target_source": f"step at line {self.current_line}",
                             "rto_met": measured <= target})
        if measured > target:
            raise TargetMissed(f"recovery time of {name!r} {format_duration(measured)} exceeds the target "
                               f"{format_duration(target)} (step at line {self.current_line})")

    def start_health_service(self) -> str:
        if self.health_service is None:
            def probes() -> dict[str, str | None]:
                found: dict[str, str | None] = {}
                for name, store in list(self.stores.items()):
                    try:
                        store.count()
                        found[name] = None
                    except Exception as exc:
                        found[name] = redact_text(str(exc))[:200]
                return found

            self.health_service = health.HealthService(probes)
            self.health_service.start()
            self.cleanup.push("stop the health service", self.health_service.stop)
            self.reporter.info(f"health service on {self.health_service.url}/health", force=True)
        return self.health_service.url

    def check_endpoint(self, url: str, status: int) -> None:
        if "{health}" in url:
            if self.health_service is None:
                raise StoreError("{health} names drill's health service: add `Given a health service for the "
                                 "stores is running` first")
            url = url.replace("{health}", self.health_service.url)
        with self.clock.phase("verify", "health"):
            evidence = health.check_http(url, status)
        self.result.evidence.setdefault("health", []).append(evidence)
        self._health_verified()

    def check_query(self, name: str, query: str, expected: str) -> None:
        store = self.store(name)
        with self.clock.phase("verify", name):
            evidence = health.check_query(store, query, expected)
        self.result.evidence.setdefault("health", []).append(evidence)
        self._health_verified()

    def _health_verified(self) -> None:
        # Health checks after a restore are part of the recovery (the runbook's last step): they extend the RTO.
        if self.restores and self.clock.started:
            self.clock.stop()
            self.result.rto_seconds = self.clock.rto()

    def _measure_rpo(self, record: RestoreRecord, target: Store) -> None:
        writer = self.writers.get(record.source)
        disaster = self.disaster_at.get(record.source, record.started_at)
        evidence: dict[str, object] = {}
        if writer is not None:
            if writer.stopped_at is None:
                self.stop_writer(record.source)
            sink = target.markers()
            newest = sink.newest()
            evidence = {**writer.evidence(), "newest_surviving_seq": newest.seq if newest else None,
                        "newest_surviving_at": newest.written_at if newest else None,
                        "lost": (writer.last.seq - newest.seq) if (writer.last and newest) else len(writer.written)}
            if newest is not None:
                record.recovery_point, record.rpo_method = newest.written_at, "markers"
        if record.recovery_point is None:
            record.recovery_point, record.rpo_method = record.artifact.consistent_at, "backup-consistent-time"
        rpo = max(0.0, disaster - record.recovery_point)
        evidence.update({"disaster_at": disaster, "recovery_point": record.recovery_point,
                         "rpo_seconds": rpo, "method": record.rpo_method, "backup": record.artifact.id})
        self.result.evidence["markers"][record.target] = evidence
        if self.result.rpo_seconds is None or rpo > self.result.rpo_seconds:
            self.result.rpo_seconds, self.result.rpo_method = rpo, record.rpo_method
        self.reporter.info(f"RPO {format_duration(rpo)} (recovery point from {record.rpo_method})", force=True)

    def run_sql(self, name: str, text: str) -> None:
        store = self.store(name)
        execute = getattr(store, "execute_sql", None)
        if execute is None:
            raise StoreError(f"SQL can only be run on PostgreSQL stores; {name!r} is a {store.kind} store")
        store.require_writes("run SQL on")
        self._arm(store, "changed by SQL")
        self.net.changed(store, "written", "SQL was run on it")
        with self.clock.phase("sql", name):
            execute(text)

    # -- verification -----------------------------------------------------------------------------------

    def expected_fingerprint(self, name: str, source: str | None) -> tuple[Fingerprint, BackupArtifact]:
        record = self.restores.get(name)
        # A restored store is compared with the backup it came from; otherwise with the latest backup.
        artifact = record.artifact if source is None and record is not None else self.latest_backup(source or name)
        if artifact.fingerprint is None:
            raise VerificationError(
                f"the state of {artifact.store!r} at backup {artifact.id} is unknown (drill did not take that "
                f"backup, so it has no fingerprint of it); check it with `Then \"{name}\" holds N rows` instead")
        return artifact.fingerprint, artifact

    def assert_matches(self, name: str, source: str | None = None) -> None:
        store = self.store(name)
        expected, artifact = self.expected_fingerprint(name, source)
        with self.clock.phase("verify", name):
            actual = store.fingerprint()
            differences = compare(expected, actual)
            # Kinds that can say which items differ (Firestore: documents and fields; GCS: objects) add those lines.
            explain = getattr(store, "explain_differences", None)
            details: list[str] = explain(artifact, {d.part for d in differences}) if differences and explain else []
            self.result.evidence["fingerprints"][store.name] = {
                "backup": artifact.id, "before": expected.to_dict(), "after": actual.to_dict(),
                "differences": [d.to_dict() for d in differences], "details": details}
            if differences:
                listed = "\n  - ".join(d.message for d in differences) + "".join(f"\n  - {line}" for line in details)
                raise VerificationError(f"{name!r} does not match the state of {artifact.store!r} at backup "
                                        f"{artifact.id}:\n  - {listed}")
        self._verified(name)

    def assert_count(self, name: str, count: int, unit: str, part: str | None = None) -> None:
        store = self.store(name)
        self._check_unit(store, unit)
        expected = self.config.scaled(count)
        with self.clock.phase("verify", name):
            actual = store.count(part)
            where = f" in {part!r}" if part else ""
            self.result.evidence.setdefault("counts", {})[f"{name}{where}"] = {"expected": expected, "actual": actual}
            if actual != expected:
                raise VerificationError(f"{name!r} holds {actual} {store.unit}{where}, expected {expected}")
        self._verified(name)

    def _verified(self, name: str) -> None:
        if name in self.restores and self.clock.started:
            self.clock.stop()
            self.result.rto_seconds = self.clock.rto()

    # -- targets ----------------------------------------------------------------------------------------

    def measured(self, metric: str) -> float | None:
        if metric == "rto":
            # Only a recovery that happened has a recovery time: none before a restore succeeded, none after
            # a restore failed (the clock would otherwise read the time up to now as if it were one).
            return self.clock.rto() if self.restores and not self.recovery_failed else None
        return self.result.rpo_seconds

    def unmeasured_reason(self, metric: str) -> str:
        if metric == "rto" and self.recovery_failed:
            return "the restore failed, so there was no recovery to time"
        return f"the scenario has no {'restore' if metric == 'rto' else 'restore from a backup'}"

    def check_target(self, metric: str, duration_text: str, line: int) -> None:
        target = TargetResult(metric, parse_duration(duration_text), f"step at line {line}")
        self.result.targets.append(target)
        self._evaluate(target)
        if target.met is False:
            raise TargetMissed(_missed_message(target))

    def _evaluate(self, target: TargetResult) -> None:
        measured = self.measured(target.metric)
        if target.metric == "rto":
            self.result.rto_seconds = measured
        target.measured_seconds = measured
        target.unmeasured_reason = self.unmeasured_reason(target.metric) if measured is None else None
        target.met = measured is not None and measured <= target.target_seconds

    def enforce_targets(self, raise_on_miss: bool) -> None:
        """Measure every tag target; raise TargetMissed listing the misses (after a scenario that passed)."""
        missed = []
        for target in self.result.targets:
            if target.source.startswith("@"):
                self._evaluate(target)
            if target.met is False:
                missed.append(target)
        if missed and raise_on_miss:
            raise TargetMissed("; ".join(_missed_message(t) for t in missed))

    # -- end --------------------------------------------------------------------------------------------

    def _arm(self, store: Store, action: str) -> None:
        """Before the first change of a live store: the safety net's reference (outside the RTO clock)."""
        if not store.config.is_live:
            return
        first = store.name not in self.net.held or self.net.held[store.name].reference is None
        if first:
            consent = "destructive" if store.config.destructive else "allow_writes"
            self.reporter.info(f"{store.name} is live and may be {action}: `{consent} = true` in "
                               f"{store.config.consent()}", force=True)
        with self.clock.phase("safety-net", store.name) if first else contextlib.nullcontext():
            self.net.arm(store, action, self.backups.get(store.name, []))

    def end(self) -> list[str]:
        """The end of the scenario, passed, failed or interrupted: rollbacks the policy `always` asks for, then
        the safety net's final check of every live store (put back when it ended worse than it began).
        Returns what fails the scenario: live stores that were not as they should be (once)."""
        if self.ended:
            return []
        self.ended = True
        with deferred_sigint():  # a second Ctrl-C must not leave a live store half put back
            for name, copy in list(self.pending_rollbacks.items()):  # policy always: put the store back
                try:
                    self.roll_back(name)
                except Exception as exc:
                    self.end_errors.append(f"rollback of {name!r} (policy always) failed: {redact_text(str(exc))}; "
                                           f"safety copy kept in {copy.directory}")
            self.result.live_stores = self.net.final_check(self.stores)
        return self.net.problems()

    def close(self) -> list[str]:
        if not self.ended:  # interrupted before the end of its steps: the final check still runs
            for problem in self.end():
                self.result.errors.append(ErrorResult("LiveStoreNotRestored", redact_text(problem)))
        rollback_errors = self.end_errors
        for path in self.throwaway_backups:
            if path.is_dir():  # a backup that is a directory (a GCS archive)
                shutil.rmtree(path, ignore_errors=True)
            for candidate in (path, path.with_name(path.name + ".manifest.json")):
                with contextlib.suppress(OSError):
                    candidate.unlink()
        cleanup_errors = self.cleanup.run()
        self.net.release(keep=bool(cleanup_errors))  # journals and references stay when a target was not dropped
        errors = rollback_errors + cleanup_errors
        self.result.phases = [PhaseResult(p.name, p.store, iso(p.started_at), iso(p.ended_at), p.seconds,
                                          p.in_rto, p.status) for p in self.clock.phases]
        if self.result.rto_seconds is None:
            self.result.rto_seconds = self.measured("rto")
        elif self.measured("rto") is None:
            self.result.rto_seconds = None  # a restore failed after an earlier one was verified
        for name, writer in self.writers.items():
            self.result.evidence["markers"].setdefault(name, writer.evidence())
        return errors


def _missed_message(target: TargetResult) -> str:
    what = "recovery time (RTO)" if target.metric == "rto" else "data loss (RPO)"
    if target.measured_seconds is None:
        why = target.unmeasured_reason or (
            f"the scenario has no {'restore' if target.metric == 'rto' else 'restore from a backup'}")
        return (f"{what} target {format_duration(target.target_seconds)} ({target.source}) could not be measured: "
                f"{why}")
    return (f"{what} {format_duration(target.measured_seconds)} exceeds the target "
            f"{format_duration(target.target_seconds)} ({target.source})")


_NAME_DATE = re.compile(r"(?P<y>20\d\d)-?(?P<m>[01]\d)-?(?P<d>[0-3]\d)"
                        r"(?:[_T-]?(?P<H>[0-2]\d)(?P<M>[0-5]\d)(?P<S>[0-5]\d)?)?")


def _date_of(path: Path) -> float:
    """A backup's date from its name (runbook style: userdb_20240115_143000.sql.gz), else its mtime."""
    match = _NAME_DATE.search(path.name)
    if match:
        with contextlib.suppress(ValueError):
            parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
            stamp = dt.datetime(parts["y"], parts["m"], parts["d"], parts.get("H", 0), parts.get("M", 0),
                                parts.get("S", 0), tzinfo=dt.UTC)
            return stamp.timestamp()
    return path.stat().st_mtime


def _write_manifest(artifact: BackupArtifact) -> None:
    manifest = {**artifact.evidence(),
                "fingerprint": artifact.fingerprint.to_dict() if artifact.fingerprint else None}
    target = artifact.path.with_name(artifact.path.name + ".manifest.json")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, target)


def _ranges(seqs: list[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:10])
    return shown + (f", ... ({len(seqs)} in all)" if len(seqs) > 10 else "")


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _quietly(action: object) -> None:
    with contextlib.suppress(DrillError):
        action()  # type: ignore[operator]
