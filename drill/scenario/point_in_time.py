"""Point-in-time recovery: base backups, recovery to a time (or to the disaster's log position), and the
markers check that proves the recovery stopped where it was asked to. Stores that can do it are
capabilities.PointInTime (local PostgreSQL with `pitr = true`)."""

from __future__ import annotations

import time

from drill.durations import parse_duration, parse_point_in_time
from drill.errors import BackupError, StoreError, VerificationError
from drill.results import iso
from drill.scenario.recovery import Recovery
from drill.scenario.safety import Safety
from drill.scenario.state import RestoreRecord, ScenarioState
from drill.stores import capabilities
from drill.stores.base import BackupArtifact, Store
from drill.stores.capabilities import PointInTime


class PointInTimeRecovery:
    def __init__(self, state: ScenarioState, safety: Safety, recovery: Recovery) -> None:
        self.state = state
        self.safety = safety
        self.recovery = recovery
        self.base_backups: dict[str, list[BackupArtifact]] = {}
        self.targets: dict[str, float] = {}  # store -> the time it was recovered to

    def _store(self, name: str, what: str) -> PointInTime:
        store = self.state.store(name)
        if not isinstance(store, PointInTime):
            raise StoreError(capabilities.lacks(name, store.kind, PointInTime, what))
        return store

    def take_base_backup(self, name: str) -> BackupArtifact:
        state = self.state
        store = self._store(name, "a base backup")
        with state.clock.phase("backup", name):
            artifact = store.base_backup(state.reporter.info)
        self.base_backups.setdefault(name, []).append(artifact)
        state.took_backup(artifact)
        state.record_backup(artifact, usable=False)  # restored only to a point in time, from its own list
        return artifact

    def use_found_base_backup(self, name: str, artifact: BackupArtifact, wal: BackupArtifact | None) -> None:
        """A base backup made outside drill (and the WAL archive it replays) becomes the store's latest backup and
        a base backup a point-in-time recovery may start from; the WAL folder is evidence too."""
        self._store(name, "a base backup")
        self.base_backups.setdefault(name, []).append(artifact)
        self.state.record_backup(artifact)
        if wal is not None:
            self.state.record_backup(wal, usable=False)

    def _target_time(self, name: str, when: str) -> tuple[float, str | None]:
        """The time to recover to, and the exact log position when it is the disaster's."""
        disaster = self.state.disaster_at.get(name)
        if when == "just before the disaster":
            if disaster is None:
                raise StoreError(f"{name!r} has had no disaster to recover to just before: add "
                                 f"`When \"{name}\" is lost` first, or name a time")
            return disaster, self.state.disaster_position.get(name)
        if when.endswith(" before the disaster"):
            if disaster is None:
                raise StoreError(f"{name!r} has had no disaster: add `When \"{name}\" is lost` first")
            return disaster - parse_duration(when.removesuffix(" before the disaster")), None
        return parse_point_in_time(when.strip('"')), None

    def restore_to_point(self, name: str, when: str) -> Store:
        state = self.state
        archive = self._store(name, "a restore to a point in time")
        store = state.store(name)
        target_time, lsn = self._target_time(name, when)
        candidates = [b for b in self.base_backups.get(name, []) if b.consistent_at <= target_time]
        if not candidates:
            raise BackupError(f"no base backup of {name!r} was taken before {iso(target_time)}: add "
                              f"`Given a base backup of \"{name}\" is taken` before that time")
        artifact = candidates[-1]
        writer = state.writers.get(name)
        self.recovery.stop_running_writer(name)  # the server is stopped for the recovery
        state.clock.start()
        started = time.time()

        def recover() -> Store:
            archive.recover_to(artifact, target_time, state.reporter.info, position=lsn)
            return store

        self.safety.guarded_restore(name, store, True, recover, name)
        record = RestoreRecord(source=name, target=name, artifact=artifact, started_at=started)
        if writer is None:
            record.recovery_point, record.rpo_method = target_time, "recovery-target-time"
        state.restores[name] = record
        self.targets[name] = target_time
        state.evidence.pitr[name] = {
            "base_backup": artifact.id, "target_time": target_time, "target": iso(target_time),
            "target_lsn": lsn, "how": "recovery_target_lsn (exclusive)" if lsn else "recovery_target_time"}
        self.recovery.measure_rpo(record, store)
        return store

    def assert_markers_at_point(self, name: str) -> None:
        state = self.state
        store = self._store(name, "checking the markers at a point in time")
        if name not in self.targets:
            raise StoreError(f"{name!r} was not recovered to a point in time in this scenario")
        writer = state.writers.get(name)
        if writer is None:
            raise StoreError(f"no writes to {name!r} were recorded: add `Given writes to \"{name}\" are recorded "
                             f"every 1 second` before its base backup")
        target = self.targets[name]
        with state.clock.phase("verify", name):
            present = {seq for seq, _ in store.present_markers()}
            before = [m for m in writer.written if m.written_at <= target]
            after = [m for m in writer.written if m.written_at > target]
            missing = [m.seq for m in before if m.seq not in present]
            # The one write in flight at the target time may commit just after it: it may be absent.
            if missing and before and missing == [before[-1].seq] and target - before[-1].written_at < 1.0:
                missing = []
            extra = [m.seq for m in after if m.seq in present]
            state.evidence.pitr[name].update({
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
        state.verified(name)


def _ranges(seqs: list[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:10])
    return shown + (f", ... ({len(seqs)} in all)" if len(seqs) > 10 else "")
