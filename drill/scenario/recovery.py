"""Recovery and RPO: the marker writer, the disaster, the restore, and the data loss it shows.

- the RTO clock starts at the first disaster (or at the first restore when nothing was lost);
- RPO is the disaster time minus the recovery point: the newest marker that survived the
  restore, or, when no marker writer ran, the backup's consistent time.
"""

from __future__ import annotations

import contextlib
import time

from drill import canary, rpo
from drill.durations import format_duration, parse_duration
from drill.errors import DrillError, StoreError
from drill.markers import MarkerWriter
from drill.names import check_name
from drill.pause import pause_point
from drill.scenario.live_stores import LiveStores
from drill.scenario.safety import Safety
from drill.scenario.state import RestoreRecord, ScenarioState
from drill.stores.base import Marker, Store, require_new_restore_target
from drill.stores.capabilities import PointInTime


class Recovery:
    def __init__(self, state: ScenarioState, safety: Safety, live: LiveStores) -> None:
        self.state = state
        self.safety = safety
        self.live = live

    # -- RPO markers ------------------------------------------------------------------------------------

    def start_writer(self, name: str, interval_text: str) -> None:
        state = self.state
        store = state.store(name)
        store.require_writes("write RPO markers into")
        if name in state.writers:
            raise StoreError(f"writes to {name!r} are already being recorded")
        writer = MarkerWriter(store.markers(), parse_duration(interval_text), name)
        state.cleanup.push(f"stop the marker writer of {name!r}", lambda: _quietly(writer.stop))
        writer.start()
        state.writers[name] = writer
        state.info(f"recording writes to {name} every {format_duration(writer.interval)}")

    def stop_writer(self, name: str) -> None:
        writer = self.state.writers.get(name)
        if writer is None:
            raise StoreError(f"no writes to {name!r} are being recorded: add "
                             f"`Given writes to \"{name}\" are recorded every 1 second` first")
        writer.stop()
        self.state.evidence.markers[name] = writer.evidence()

    def stop_running_writer(self, name: str) -> None:
        """Stop the writer of `name` if one runs (a disaster or a recovery ends the writes)."""
        writer = self.state.writers.get(name)
        if writer is not None and writer.stopped_at is None:
            self.stop_writer(name)

    def wait(self, duration_text: str) -> None:
        seconds = parse_duration(duration_text)
        self.state.info(f"waiting {format_duration(seconds)}")
        time.sleep(seconds)  # the scenario asked for time to pass (e.g. writes to accumulate)

    # -- disaster and recovery --------------------------------------------------------------------------

    def lose(self, name: str) -> None:
        state = self.state
        store = state.store(name)
        store.require_destructive("lose")  # refuse before the clock starts or anything is touched
        self.live.arm(store, "lost")
        self.stop_running_writer(name)  # the writer runs until the disaster
        position = store.recovery_position() if isinstance(store, PointInTime) else None
        if position is not None:  # "just before the disaster" is this log position, exactly
            state.disaster_position[name] = position
        state.clock.start()
        state.disaster_at[name] = time.time()
        self.live.changed(store, "lost", "lost")
        with state.clock.phase("disaster", name):
            store.lose()
        pause_point(f"disaster:{name}")

    def restore(self, name: str, into: str | None = None) -> Store:
        state = self.state
        if into is not None:
            check_name(into, "restore target")
        store = state.store(name)
        if into is not None:
            # `into` the store's own database (project, bucket, volume) would be an in-place restore that skipped
            # the consent, the safety copy and the journal below: refused, before anything is read or touched.
            require_new_restore_target(store, into, f"restore it in place (`When \"{name}\" is restored from its "
                                                    f"latest backup`, with `destructive = true`)")
        artifact = state.latest_backup(name)
        if into is not None and into in state.stores:
            raise StoreError(f"cannot restore into {into!r}: that name is already a store of this scenario")
        # In place means in place: a live store is restored into itself, which needs `destructive = true`
        # (refused here, before anything is touched); only `into` restores into a new target.
        if into is None:
            store.require_in_place_restore()
            self.live.arm(store, "overwritten by a restore")
        else:
            self.live.add_target(store, into)  # journaled first: a drill killed now leaves it to `drill repair`
        state.clock.start()  # a restore with no disaster before it starts the clock itself
        started = time.time()
        if into is None:
            self.live.changed(store, "overwritten", f"restored in place from backup {artifact.id}")
        target = self.safety.guarded_restore(
            name, store, into is None, lambda: self.safety.restore_with_faults(name, store, artifact, into),
            into or name)
        if into is None:
            self.live.restored(store, artifact)
        target_name = into or name
        if into is not None:
            state.stores[into] = target
            state.cleanup.push(f"close {into!r}", target.close)
        record = RestoreRecord(source=name, target=target_name, artifact=artifact, started_at=started)
        state.restores[target_name] = record
        self.measure_rpo(record, target)
        return target

    def measure_rpo(self, record: RestoreRecord, target: Store) -> None:
        state = self.state
        writer = state.writers.get(record.source)
        disaster = state.disaster_at.get(record.source, record.started_at)
        evidence: dict[str, object] = {}
        newest = None
        if writer is not None:
            if writer.stopped_at is None:
                self.stop_writer(record.source)
            sink = target.markers()
            newest = sink.newest()
            evidence = {**writer.evidence(), "newest_surviving_seq": newest.seq if newest else None,
                        "newest_surviving_at": newest.written_at if newest else None,
                        "lost": rpo.markers_lost(writer.last.seq if writer.last else None,
                                                 newest.seq if newest else None, len(writer.written))}
        preset = (record.recovery_point, record.rpo_method or "") if record.recovery_point is not None else None
        # No writer's marker survived (or none ran): the newest canary `drill canary` left in the data, if any.
        newest_canary = self._newest_canary(record, target, evidence) if preset is None and newest is None else None
        record.recovery_point, record.rpo_method = rpo.recovery_point(
            preset, newest.written_at if newest else None, record.artifact.consistent_at,
            newest_canary.written_at if newest_canary else None)
        loss = rpo.rpo_seconds(disaster, record.recovery_point)
        evidence.update({"disaster_at": disaster, "recovery_point": record.recovery_point,
                         "rpo_seconds": loss, "method": record.rpo_method, "backup": record.artifact.id})
        state.evidence.markers[record.target] = evidence
        if rpo.worst(state.result.rpo_seconds, loss, state.result.rpo_method):
            state.result.rpo_seconds, state.result.rpo_method = loss, record.rpo_method
        state.info(f"RPO {format_duration(loss)} (recovery point from {record.rpo_method})")
        if newest_canary is not None and record.artifact.source != "drill":
            # A production backup: its canaries say when its data is from, whatever its name or manifest says.
            canary.check_against_date(record.source, record.artifact, newest_canary,
                                      canary.interval_of(state.store(record.source)))

    def _newest_canary(self, record: RestoreRecord, target: Store, evidence: dict[str, object]) -> Marker | None:
        """The newest canary (a marker `drill canary` wrote before the backup) in the restored data, if any."""
        try:
            newest = target.markers().newest()
        except DrillError as exc:  # the restored data could not be read for canaries: RPO from the backup's date
            evidence["canary_error"] = str(exc)
            return None
        if newest is not None:
            evidence.update({"canary_seq": newest.seq, "canary_at": newest.written_at,
                             "backup_dated_at": record.artifact.consistent_at,
                             "canary_interval_seconds": canary.interval_of(self.state.store(record.source))})
        return newest

    def close(self) -> None:
        """Record every writer's evidence (those the scenario never stopped included)."""
        for name, writer in self.state.writers.items():
            self.state.evidence.markers.setdefault(name, writer.evidence())


def _quietly(action: object) -> None:
    with contextlib.suppress(DrillError):
        action()  # type: ignore[operator]
