"""Rollback and planted failures (drill.rollback, drill.faults): a restore guarded by a safety copy.

Before a restore overwrites a store, a safety copy is kept as the rollback policy says; a restore
that fails is rolled back and the rollback verified; faults planted on purpose make a restore fail
for real (a corrupt copy of the backup, a killed server, a full disk, a time limit).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import Any

from drill import faults, rollback
from drill.durations import parse_duration
from drill.errors import DrillError, StoreError, VerificationError
from drill.evidence import FingerprintEvidence
from drill.fingerprint import compare
from drill.pause import pause_point
from drill.redact import redact_text
from drill.scenario.live_stores import LiveStores
from drill.scenario.state import ScenarioState
from drill.stores.base import BackupArtifact, Store


class Safety:
    def __init__(self, state: ScenarioState, live: LiveStores) -> None:
        self.state = state
        self.live = live
        self.policy = state.config.rollback
        self.kept: dict[str, rollback.SafetyCopy] = {}  # every safety copy taken, for the rollback check
        self.pending: dict[str, rollback.SafetyCopy] = {}  # policy always: rolled back at the end
        self.rolled_back: dict[str, dict[str, Any]] = {}
        self.planted: dict[str, str] = {}  # store -> fault planted into its next restore (drill.faults)
        self.timeouts: dict[str, float] = {}

    def set_policy(self, policy: str) -> None:
        self.policy = rollback.check_policy(policy, f"step at line {self.state.current_line}")
        self.state.evidence.rollback["policy"] = self.policy

    def set_restore_timeout(self, name: str, duration_text: str) -> None:
        self.state.store(name)
        self.timeouts[name] = parse_duration(duration_text)

    def guarded_restore(self, name: str, store: Store, in_place: bool, action: Callable[[], Store],
                        phase_store: str) -> Store:
        """Keep a safety copy (per the rollback policy), run the restore, roll back and verify when it fails."""
        state = self.state
        copy = None
        if in_place and name in self.pending:
            copy = self.pending.pop(name)  # policy always: back to the state before the first restore
        elif in_place and self.policy != "never":
            with state.clock.phase("safety-copy", name):
                copy = rollback.keep(store, state.config.backup_dir_for(store.config), state.reporter.info)
            self.kept[name] = copy
            state.evidence.rollback[name] = {"policy": self.policy, "safety_copy": copy.evidence()}
        try:
            with state.clock.phase("restore", phase_store):
                target = action()
        except BaseException as exc:
            state.recovery_failed = True  # no RTO until a later restore succeeds
            if copy is None or not isinstance(exc, Exception):
                raise
            self._roll_back_after_failure(name, store, copy, exc)
            raise AssertionError("unreachable") from exc  # _roll_back_after_failure always raises
        state.recovery_failed = False
        if copy is not None:
            if self.policy == "always":
                self.pending[name] = copy  # rolled back when the scenario ends
            else:
                rollback.finish(copy)
        return target

    def _roll_back_after_failure(self, name: str, store: Store, copy: rollback.SafetyCopy, cause: Exception) -> None:
        state = self.state
        reason = redact_text(str(cause))
        try:
            with state.clock.phase("rollback", name):
                outcome = rollback.roll_back(store, copy, state.reporter.info)
        except Exception as failed:
            state.evidence.rollback[name].update({"cause": reason, "verified": False,
                                                  "error": redact_text(str(failed))})
            raise StoreError(f"the restore of {name!r} failed ({reason}) and so did its rollback: "
                             f"{redact_text(str(failed))}\nthe safety copy and journal are kept in "
                             f"{copy.directory}") from cause
        rollback.finish(copy)
        outcome["cause"] = reason
        self.rolled_back[name] = outcome
        state.evidence.rollback[name].update(outcome)
        state.info(f"{name} rolled back to its state before the restore (verified)")
        raise StoreError(f"the restore of {name!r} failed: {reason}\n{name!r} was rolled back to its state before "
                         f"the restore, and its fingerprint matches the one taken then") from cause

    def restore_with_faults(self, name: str, store: Store, artifact: BackupArtifact, into: str | None) -> Store:
        state = self.state
        cause = self.planted.get(name)
        timeout = self.timeouts.get(name, store.config.restore_timeout)
        if cause == "timeout":
            timeout = faults.TIMEOUT_FAULT_SECONDS
        scratch = rollback.state_dir(state.config.backup_dir_for(store.config), name) / "faults"
        with contextlib.ExitStack() as stack:
            stack.callback(lambda: shutil.rmtree(scratch, ignore_errors=True))
            if cause == "corrupt":
                artifact = faults.corrupt_copy(artifact, scratch)
            elif cause in faults.SERVER_FAULTS:
                stack.enter_context(faults.plant(store, cause, scratch))

            def run() -> Store:
                pause_point(f"restore:{name}")
                return store.restore(artifact, into, state.reporter.info)

            if timeout is not None:
                return faults.run_with_timeout(run, timeout, faults.abort(store), f"the restore of {name!r}")
            return run()

    def restore_fails(self, name: str, cause_text: str | None, restore: Callable[[str], Store]) -> None:
        """Plant a failure into the next restore of `name`, run it (`restore`), and require that it fails."""
        cause = faults.cause_of(cause_text)
        self.planted[name] = cause
        try:
            restore(name)
        except DrillError as exc:
            if isinstance(exc, faults.FaultError) or isinstance(exc.__cause__, faults.FaultError):
                raise  # the fault was not planted: that is no proof of anything
            self.state.evidence.planted_failures[name] = {
                "fault": cause, "error": redact_text(str(exc)), "rolled_back": name in self.rolled_back}
            self.state.info(f"the restore of {name} failed as planted ({cause})")
            return
        finally:
            self.planted.pop(name, None)
        raise VerificationError(f"the planted fault ({cause_text or 'the backup is corrupt'}) did not make the "
                                f"restore of {name!r} fail")

    def roll_back(self, name: str) -> None:
        """Roll a store back now from the copy kept before its restore (rollback policy always)."""
        state = self.state
        store = state.store(name)
        copy = self.pending.pop(name, None)
        if copy is None:
            raise StoreError(f"{name!r} has no safety copy to roll back to: set `Given the rollback policy is always` "
                             f"before its restore (on-failure keeps the copy only while the restore runs)")
        self.live.changed(store, "overwritten", "rolled back to its state before the restore")
        with state.clock.phase("rollback", name):
            outcome = rollback.roll_back(store, copy, state.reporter.info)
        rollback.finish(copy)
        self.rolled_back[name] = outcome
        state.evidence.rollback.setdefault(name, {}).update(outcome)

    def assert_rolled_back(self, name: str) -> None:
        state = self.state
        store = state.store(name)
        if name not in self.rolled_back:
            failed = state.evidence.rollback.get(name, {}).get("error")
            why = ("the rollback policy is never" if self.policy == "never"
                   else f"its rollback failed: {failed}" if failed
                   else "no restore of it failed and it was not rolled back")
            raise VerificationError(f"{name!r} was not rolled back: {why}")
        copy = self.kept[name]
        with state.clock.phase("verify", name):
            if copy.absent:
                if not rollback.store_is_absent(store):
                    raise VerificationError(f"{name!r} did not exist before the restore, but it exists after the "
                                            f"rollback")
                return
            assert copy.fingerprint is not None
            actual = store.fingerprint()
            differences = compare(copy.fingerprint, actual)
            state.evidence.fingerprints[f"{name} (rollback)"] = FingerprintEvidence(
                backup=None, before=copy.fingerprint.to_dict(), after=actual.to_dict(),
                differences=[d.to_dict() for d in differences])
            if differences:
                listed = "\n  - ".join(d.message for d in differences)
                raise VerificationError(f"{name!r} does not match its state before the restore:\n  - {listed}")

    def close(self) -> list[str]:
        """Policy always: put every store restored in place back as it was; the failures, as messages."""
        errors = []
        for name, copy in list(self.pending.items()):
            try:
                self.roll_back(name)
            except Exception as exc:
                errors.append(f"rollback of {name!r} (policy always) failed: {redact_text(str(exc))}; "
                              f"safety copy kept in {copy.directory}")
        return errors
