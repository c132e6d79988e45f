"""`drill status`: per store, when a drill last passed, the last verified backup and its age, the RTO/RPO
trend and the overdue controls, read from the reports directory alone (results and history, never a store).

A backup counts as verified only when a scenario that passed restored it and a check of the restored
store passed against it: a fingerprint comparison with that backup that found no difference, or a
count that matched. A backup a scenario only found or dated (a freshness check), and one whose
restore failed as planted, is not verified. Ages are measured from the backup's consistent point:
the moment its data is from. Controls are evaluated from the history, as in the report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill.config import Config
from drill.controls import ControlStatus, evaluate, format_period, occurrences, parse_time
from drill.durations import format_duration
from drill.errors import DrillError
from drill.evidence import CountEvidence
from drill.report.history import HistoryEntry, read_history, verify
from drill.report.history_store import HistoryStore, default_store, history_store

TREND_POINTS = 10  # the trend lists at most this many of the latest measurements


@dataclass
class Seen:
    """One scenario of one run."""

    run_id: str
    scenario_id: str
    name: str
    status: str
    at: dt.datetime  # when the scenario ended (results), else when its run started (history)
    rto: float | None
    rpo: float | None
    rto_target: float | None
    rpo_target: float | None
    stores: list[str] = field(default_factory=list)
    verified_backups: list[dict[str, Any]] = field(default_factory=list)  # restored and checked (_verified_backups)


@dataclass
class ScenarioState:
    id: str
    name: str
    stores: list[str]
    last: Seen
    last_success: Seen | None
    rto_trend: list[float]
    rpo_trend: list[float]
    latest_rto: Seen | None  # the newest run in which RTO was measured
    latest_rpo: Seen | None


@dataclass
class BackupState:
    id: str
    sha256: str | None
    consistent_at: dt.datetime
    age_seconds: float
    run_id: str
    scenario: str


@dataclass
class StoreState:
    name: str
    last: Seen
    last_success: Seen | None
    last_verified_backup: BackupState | None
    scenarios: list[ScenarioState]


@dataclass
class SuiteStatus:
    report_dir: Path
    as_of: dt.datetime
    runs: int
    latest_run: HistoryEntry | None
    stores: list[StoreState]
    scenarios: list[ScenarioState]
    controls: list[ControlStatus]
    integrity_problems: list[str]

    @property
    def overdue_controls(self) -> list[ControlStatus]:
        return [c for c in self.controls if c.overdue]


def _epoch(value: Any) -> dt.datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return None


def _stores_of(scenario: Mapping[str, Any]) -> list[str]:
    """The stores a scenario declared (not the scratch copies it restored into)."""
    evidence = scenario.get("evidence") or {}
    names = set((evidence.get("stores") or {}).keys())
    names |= {b.get("store") for b in evidence.get("backups") or [] if isinstance(b, dict) and b.get("store")}
    if not names:  # a drill that stopped before its evidence: the stores it began to provision
        names = {p.get("store") for p in scenario.get("phases") or []
                 if isinstance(p, dict) and p.get("name") == "provision" and p.get("store")}
    return sorted(str(n) for n in names if n)


def _count_met(count: Any) -> bool:
    if not isinstance(count, dict) or not isinstance(count.get("actual"), int):
        return False
    expected = count.get("expected")
    return isinstance(expected, int) and CountEvidence(expected, count["actual"], bool(count.get("at_least"))).met


def _section(evidence: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = evidence.get(name)
    return found if isinstance(found, dict) else {}


def _verified_backups(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The backups (evidence.backups entries) this scenario restored and checked after the restore.

    A restore is recorded in evidence.markers[<target>]["backup"] (the id of the backup restored into the store
    that now holds it; written only once the restore succeeded). Its check: evidence.fingerprints[<target>]
    compared with that same backup and no difference, or a count of <target> (evidence.counts "<target>" or
    "<target> in …/with …/matching …") that was met."""
    if not isinstance(evidence, Mapping):
        return []
    markers, fingerprints, counts = (_section(evidence, k) for k in ("markers", "fingerprints", "counts"))
    verified: set[str] = set()
    for target, marker in markers.items():
        backup = marker.get("backup") if isinstance(marker, dict) else None
        if not backup:
            continue  # a writer's markers, no restore
        fingerprint = fingerprints.get(target)
        matched = (isinstance(fingerprint, dict) and fingerprint.get("backup") == backup
                   and not fingerprint.get("differences"))
        counted = any(_count_met(count) for key, count in counts.items()
                      if key == target or key.startswith(f"{target} "))
        if matched or counted:
            verified.add(str(backup))
    return [b for b in evidence.get("backups") or [] if isinstance(b, dict) and str(b.get("id")) in verified]


def _read_results(store: HistoryStore, entry: HistoryEntry) -> dict[str, Any]:
    """The run's results.json when it is still there and readable (else empty: the history alone counts)."""
    try:
        found = store.get(entry.results)
        raw = json.loads(found) if found is not None else None
    except (OSError, ValueError, DrillError):
        return {}
    return raw if isinstance(raw, dict) else {}


def gather(report_dir: Path, config: Config | None, as_of: dt.datetime | None = None) -> SuiteStatus:
    if not report_dir.is_dir():
        raise DrillError(f"{report_dir}: no reports directory; run `drill run` first, or name it with --report-dir")
    # The history lives where [drill] history (or $DRILL_HISTORY) says: beside the runs by default.
    store = history_store(config, report_dir) if config is not None else default_store(report_dir)
    entries = read_history(report_dir, store)
    if not entries:
        raise DrillError(f"{report_dir}: no runs in the history ({store.location}); run `drill run` first")
    now = as_of or dt.datetime.now(tz=dt.UTC)
    seen: list[Seen] = []
    declared: dict[str, dict[str, Any]] = {}
    for entry in entries:
        started = parse_time(entry.started_at)
        if started is None or started > now:
            continue
        raw = _read_results(store, entry)
        details = {f"{s.get('feature', '')}::{s.get('name', '')}": s for s in raw.get("scenarios", [])
                   if isinstance(s, dict)}
        if isinstance(raw.get("controls"), dict) and raw["controls"]:
            declared = raw["controls"]  # without drill.toml's: the controls the newest run recorded
        for point in entry.scenarios:
            detail = details.get(point.id, {})
            ended = parse_time(detail.get("ended_at") or "") or started
            seen.append(Seen(entry.run_id, point.id, point.name, point.status, ended, point.rto_seconds,
                             point.rpo_seconds, point.rto_target, point.rpo_target, _stores_of(detail),
                             _verified_backups(detail.get("evidence") or {})))
    if config is not None and config.controls:  # drill.toml's controls are today's requirement
        declared = {c.id: {"title": c.title, "every_seconds": c.every} for c in config.controls.values()}
    usable = [e for e in entries if (parse_time(e.started_at) or now) <= now]
    controls = evaluate(declared, occurrences((e.run_id, e.started_at, e.scenarios) for e in usable), now)
    scenarios = _scenarios(seen)
    problems = [str(p) for p in verify(report_dir, store=store)]
    return SuiteStatus(report_dir, now, len(usable), usable[-1] if usable else None, _stores(seen, scenarios, now),
                       scenarios, controls, problems)


def _scenarios(seen: list[Seen]) -> list[ScenarioState]:
    by_id: dict[str, list[Seen]] = {}
    for item in sorted(seen, key=lambda s: s.at):
        by_id.setdefault(item.scenario_id, []).append(item)
    states = []
    for scenario_id, items in by_id.items():
        passed = [s for s in items if s.status == "passed"]
        rto = [s for s in items if s.rto is not None]
        rpo = [s for s in items if s.rpo is not None]
        stores = sorted({store for s in items[-1:] for store in s.stores} or {st for s in items for st in s.stores})
        states.append(ScenarioState(
            scenario_id, items[-1].name, stores, items[-1], passed[-1] if passed else None,
            [s.rto for s in rto[-TREND_POINTS:] if s.rto is not None],
            [s.rpo for s in rpo[-TREND_POINTS:] if s.rpo is not None],
            rto[-1] if rto else None, rpo[-1] if rpo else None))
    return sorted(states, key=lambda s: s.name)


def _stores(seen: list[Seen], scenarios: list[ScenarioState], now: dt.datetime) -> list[StoreState]:
    names = sorted({store for item in seen for store in item.stores})
    states = []
    for name in names:
        items = sorted((s for s in seen if name in s.stores), key=lambda s: s.at)
        passed = [s for s in items if s.status == "passed"]
        backup = None
        for item in passed:
            for b in item.verified_backups:
                consistent = _epoch(b.get("consistent_at"))
                if b.get("store") == name and consistent is not None and (
                        backup is None or consistent >= backup.consistent_at):
                    backup = BackupState(str(b.get("id")), b.get("sha256"), consistent,
                                         (now - consistent).total_seconds(), item.run_id, item.name)
        states.append(StoreState(name, items[-1], passed[-1] if passed else None, backup,
                                 [s for s in scenarios if name in s.stores]))
    return states


# --- output -------------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds") if value else None


def _seen_dict(item: Seen | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {"status": item.status, "scenario": item.name, "at": _iso(item.at), "run_id": item.run_id}


def _scenario_dict(s: ScenarioState) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "stores": s.stores, "last": _seen_dict(s.last),
            "last_success_at": _iso(s.last_success.at) if s.last_success else None,
            "rto_seconds": s.latest_rto.rto if s.latest_rto else None,
            "rpo_seconds": s.latest_rpo.rpo if s.latest_rpo else None,
            "rto_target_seconds": s.last.rto_target, "rpo_target_seconds": s.last.rpo_target,
            "rto_trend": s.rto_trend, "rpo_trend": s.rpo_trend}


def to_dict(status: SuiteStatus) -> dict[str, Any]:
    latest = status.latest_run
    return {
        "report_dir": str(status.report_dir), "as_of": _iso(status.as_of), "runs": status.runs,
        "latest_run": {"run_id": latest.run_id, "status": latest.status, "started_at": latest.started_at}
        if latest else None,
        "integrity": {"intact": not status.integrity_problems, "problems": status.integrity_problems},
        "stores": {s.name: {
            "last_result": _seen_dict(s.last),
            "last_success_at": _iso(s.last_success.at) if s.last_success else None,
            "last_verified_backup": None if s.last_verified_backup is None else {
                "id": s.last_verified_backup.id, "sha256": s.last_verified_backup.sha256,
                "consistent_at": _iso(s.last_verified_backup.consistent_at),
                "age_seconds": s.last_verified_backup.age_seconds, "run_id": s.last_verified_backup.run_id,
                "scenario": s.last_verified_backup.scenario},
            "scenarios": [x.id for x in s.scenarios]} for s in status.stores},
        "scenarios": [_scenario_dict(s) for s in status.scenarios],
        "controls": [c.to_dict() for c in status.controls],
        "overdue_controls": [c.id for c in status.overdue_controls],
    }


def _ago(status: SuiteStatus, when: dt.datetime) -> str:
    seconds = (status.as_of - when).total_seconds()
    return f"{when.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} ({format_period(max(seconds, 0))} ago)"


def _trend(values: list[float], target: float | None) -> str:
    if not values:
        return "not measured"
    text = format_duration(values[-1]) + (f" (target {format_duration(target)})" if target is not None else "")
    if len(values) > 1:
        text += f"; last {len(values)} runs, oldest first: {' '.join(format_duration(v) for v in values)}"
    return text


def render_text(status: SuiteStatus) -> str:
    latest = status.latest_run
    lines = [f"drill status of {status.report_dir} as of {status.as_of.astimezone(dt.UTC):%Y-%m-%d %H:%M UTC}: "
             f"{status.runs} run(s)" + (f", latest {latest.run_id} {latest.status}" if latest else "")]
    if status.integrity_problems:
        lines.append(f"INTEGRITY: {len(status.integrity_problems)} problem(s); see `drill report --verify`")
    for store in status.stores:
        lines.append("")
        lines.append(f"store {store.name}")
        lines.append(f"  last drill:           {store.last.status} {_ago(status, store.last.at)}: {store.last.name}")
        success = _ago(status, store.last_success.at) if store.last_success else "never"
        lines.append(f"  last success:         {success}")
        backup = store.last_verified_backup
        lines.append("  last verified backup: " + (
            f"{backup.id}, data from {_ago(status, backup.consistent_at)}" if backup else "none"))
        for scenario in store.scenarios:
            lines.append(f"  {scenario.name}")
            lines.append(f"    RTO {_trend(scenario.rto_trend, scenario.last.rto_target)}")
            lines.append(f"    RPO {_trend(scenario.rpo_trend, scenario.last.rpo_target)}")
    if status.controls:
        lines.append("")
        lines.append("controls")
        for control in status.controls:
            last = _ago(status, control.last_success_at) if control.last_success_at else "never"
            lines.append(f"  {control.id} ({control.title}), every {format_period(control.every)}: "
                         f"{control.state.upper() if control.overdue else control.state}; last success {last}")
    overdue = status.overdue_controls
    lines.append("")
    lines.append(f"overdue controls: {', '.join(c.id for c in overdue)}" if overdue else
                 ("overdue controls: none" if status.controls else "controls: none declared"))
    return "\n".join(lines) + "\n"
