"""One running drill scenario: its stores, backups, writers, clock, targets and evidence.

Steps are thin and call methods here; this is where a drill's semantics live:
- the RTO clock starts at the first disaster (or at the first restore when nothing was lost)
  and stops at the last successful verification of a restored store;
- RPO is the disaster time minus the recovery point: the newest marker that survived the
  restore, or, when no marker writer ran, the backup's consistent time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from drill.cleanup import CleanupStack
from drill.clock import RecoveryClock
from drill.config import Config
from drill.durations import format_duration, parse_duration
from drill.errors import BackupError, DrillError, StoreError, TargetMissed, VerificationError
from drill.fingerprint import Fingerprint, compare
from drill.markers import MarkerWriter
from drill.progress import Reporter
from drill.provision.factory import provision
from drill.results import PhaseResult, ScenarioResult, TargetResult, iso
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
        # A live store restored without "into" goes to a new database; its name then means that copy.
        self.aliases: dict[str, str] = {}
        self.throwaway_backups: list[Path] = []
        # Fingerprints of backups this scenario wrote to a path (e.g. a runbook-style dump found later by glob).
        self.fingerprints_by_path: dict[Path, Fingerprint] = {}
        self.current_line = 0  # line of the step being run (set by the plugin), for target sources
        self.result.targets = targets_from_tags(tags, config)
        self.result.evidence.setdefault("stores", {})
        self.result.evidence.setdefault("backups", [])
        self.result.evidence.setdefault("fingerprints", {})
        self.result.evidence.setdefault("markers", {})

    # -- stores -----------------------------------------------------------------------------------------

    def declare(self, kind_name: str, name: str) -> Store:
        if name in self.stores:
            return self.stores[name]
        kind = KIND_NAMES[kind_name]
        store_config = self.config.store(name, kind)
        with self.clock.phase("provision", name):
            store = provision(store_config, self.cleanup, self.reporter.info)
        self.cleanup.push(f"close {name!r}", store.close)
        self.stores[name] = store
        self.result.evidence["stores"][name] = store.describe()
        return store

    def store(self, name: str) -> Store:
        try:
            return self.stores[self.aliases.get(name, name)]
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
        writer = self.writers.get(name)
        if writer is not None and writer.stopped_at is None:
            self.stop_writer(name)  # the writer runs until the disaster
        self.clock.start()
        self.disaster_at[name] = time.time()
        with self.clock.phase("disaster", name):
            store.lose()

    def restore(self, name: str, into: str | None = None) -> Store:
        store = self.store(name)
        artifact = self.latest_backup(name)
        # Kinds with no "new database" to restore into (Redis) restore a live store in place, which
        # needs `destructive = true`.
        redirected = into is None and store.config.is_live and getattr(store, "live_restore_into_new_target", True)
        if redirected:
            # Live stores are never overwritten by default (even when destructive): a new scratch target.
            into = f"{name}_drill_{uuid.uuid4().hex[:8]}"
            self.reporter.info(f"{name} is live: restoring into a new target {into} (it is dropped afterwards)",
                               force=True)
        if into is not None and into in self.stores:
            raise StoreError(f"cannot restore into {into!r}: that name is already a store of this scenario")
        self.clock.start()  # a restore with no disaster before it starts the clock itself
        started = time.time()
        with self.clock.phase("restore", into or name):
            target = store.restore(artifact, into, self.reporter.info)
        target_name = into or name
        if into is not None:
            self.stores[into] = target
            self.cleanup.push(f"close {into!r}", target.close)
        record = RestoreRecord(source=name, target=target_name, artifact=artifact, started_at=started)
        self.restores[target_name] = record
        if redirected:
            self.aliases[name] = target_name
        self._measure_rpo(record, target)
        return target

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
        with self.clock.phase("sql", name):
            execute(text)

    # -- verification -----------------------------------------------------------------------------------

    def expected_fingerprint(self, name: str, source: str | None) -> tuple[Fingerprint, BackupArtifact]:
        record = self.restores.get(self.aliases.get(name, name))
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
        if self.aliases.get(name, name) in self.restores and self.clock.started:
            self.clock.stop()
            self.result.rto_seconds = self.clock.rto()

    # -- targets ----------------------------------------------------------------------------------------

    def measured(self, metric: str) -> float | None:
        if metric == "rto":
            return self.clock.rto()
        return self.result.rpo_seconds

    def check_target(self, metric: str, duration_text: str, line: int) -> None:
        target = TargetResult(metric, parse_duration(duration_text), f"step at line {line}")
        self.result.targets.append(target)
        self._evaluate(target)
        if target.met is False:
            raise TargetMissed(_missed_message(target))

    def _evaluate(self, target: TargetResult) -> None:
        measured = self.measured(target.metric)
        if target.metric == "rto" and measured is not None:
            self.result.rto_seconds = measured
        target.measured_seconds = measured
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

    def close(self) -> list[str]:
        for path in self.throwaway_backups:
            if path.is_dir():  # a backup that is a directory (a GCS archive)
                shutil.rmtree(path, ignore_errors=True)
            for candidate in (path, path.with_name(path.name + ".manifest.json")):
                with contextlib.suppress(OSError):
                    candidate.unlink()
        errors = self.cleanup.run()
        self.result.phases = [PhaseResult(p.name, p.store, iso(p.started_at), iso(p.ended_at), p.seconds,
                                          p.in_rto, p.status) for p in self.clock.phases]
        if self.result.rto_seconds is None and self.clock.started:
            self.result.rto_seconds = self.clock.rto()
        for name, writer in self.writers.items():
            self.result.evidence["markers"].setdefault(name, writer.evidence())
        return errors


def _missed_message(target: TargetResult) -> str:
    what = "recovery time (RTO)" if target.metric == "rto" else "data loss (RPO)"
    if target.measured_seconds is None:
        return (f"{what} target {format_duration(target.target_seconds)} ({target.source}) could not be measured: "
                f"the scenario has no {'restore' if target.metric == 'rto' else 'restore from a backup'}")
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


def _quietly(action: object) -> None:
    with contextlib.suppress(DrillError):
        action()  # type: ignore[operator]
