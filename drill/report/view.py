"""What every renderer shows, computed once from a loaded run: verdict, counts, targets, trend."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from drill.durations import format_duration
from drill.report.history import ScenarioPoint, points_of, scenario_id
from drill.report.model import LoadedRun
from drill.results import ScenarioResult, TargetResult

TREND_RUNS = 40  # the chart shows at most this many of the latest runs; the quarter table counts all


@dataclass
class Summary:
    scenarios: int
    passed: int
    failed: int
    interrupted: int
    other: int
    targets: int
    targets_met: int
    targets_missed: int
    targets_unmeasured: int
    verdict: str  # PASSED | FAILED | INTERRUPTED | ERROR
    intact: bool


def summarize(loaded: LoadedRun) -> Summary:
    run = loaded.run
    statuses = [s.status for s in run.scenarios]
    targets = [t for s in run.scenarios for t in s.targets]
    return Summary(
        scenarios=len(statuses), passed=statuses.count("passed"), failed=statuses.count("failed"),
        interrupted=statuses.count("interrupted"),
        other=len(statuses) - statuses.count("passed") - statuses.count("failed") - statuses.count("interrupted"),
        targets=len(targets), targets_met=sum(1 for t in targets if t.met is True),
        targets_missed=sum(1 for t in targets if t.met is False),
        targets_unmeasured=sum(1 for t in targets if t.met is None),
        verdict=(run.status or "error").upper(), intact=loaded.seal_problem is None and not loaded.history_problems)


def tightest(scenario: ScenarioResult, metric: str) -> TargetResult | None:
    targets = [t for t in scenario.targets if t.metric == metric]
    return min(targets, key=lambda t: t.target_seconds) if targets else None


def metric_met(scenario: ScenarioResult, metric: str) -> bool | None:
    targets = [t for t in scenario.targets if t.metric == metric]
    if any(t.met is False for t in targets):
        return False
    if targets and all(t.met is True for t in targets):
        return True
    return None


def measured_text(seconds: float | None) -> str:
    """A measured RTO or RPO; none (no recovery, or a failed one) reads "not measured", never as a time."""
    return "not measured" if seconds is None else format_duration(seconds)


def measure_text(scenario: ScenarioResult, metric: str) -> str:
    measured = scenario.rto_seconds if metric == "rto" else scenario.rpo_seconds
    target = tightest(scenario, metric)
    if target is None:
        return measured_text(measured)
    verdict = " MISSED" if metric_met(scenario, metric) is False else ""
    return f"{measured_text(measured)} / {format_duration(target.target_seconds)}{verdict}"


@dataclass
class Quarter:
    quarter: str
    runs: int
    passed: int
    rto_worst: float | None
    rpo_worst: float | None
    rto_target: float | None
    rpo_target: float | None


@dataclass
class TrendRow:
    run_id: str
    label: str  # when the run started, as the chart shows it
    when: dt.datetime | None
    point: ScenarioPoint
    current: bool  # the run being reported


@dataclass
class Trend:
    points: list[TrendRow] = field(default_factory=list)
    quarters: list[Quarter] = field(default_factory=list)


def _when(started_at: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(started_at)
    except ValueError:
        return None


def trends(loaded: LoadedRun) -> dict[str, Trend]:
    """Per scenario of this run (by feature::name): its points across the history, oldest first."""
    runs: list[tuple[str, str, list[ScenarioPoint]]] = [(e.run_id, e.started_at, e.scenarios) for e in loaded.history]
    if loaded.history_entry is None:  # a run outside the history still shows itself
        from dataclasses import asdict

        runs.append((loaded.run.run_id, loaded.run.started_at,
                     points_of({"scenarios": [asdict(s) for s in loaded.run.scenarios]})))
    wanted = {scenario_id(s.feature, s.name) for s in loaded.run.scenarios}
    result: dict[str, Trend] = {key: Trend() for key in wanted}
    for run_id, started_at, points in runs:
        when = _when(started_at)
        label = when.strftime("%Y-%m-%d %H:%M") if when else run_id
        for point in points:
            if point.id in result:
                result[point.id].points.append(TrendRow(run_id, label, when, point, run_id == loaded.run.run_id))
    for trend in result.values():
        trend.quarters = _quarters(trend.points)
    return result


def _worst(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _quarters(rows: list[TrendRow]) -> list[Quarter]:
    grouped: dict[str, list[ScenarioPoint]] = {}
    for row in rows:
        key = f"{row.when.year}-Q{(row.when.month - 1) // 3 + 1}" if row.when else "unknown"
        grouped.setdefault(key, []).append(row.point)
    return [Quarter(quarter=key, runs=len(ps), passed=sum(1 for p in ps if p.status == "passed"),
                    rto_worst=_worst([p.rto_seconds for p in ps]), rpo_worst=_worst([p.rpo_seconds for p in ps]),
                    rto_target=ps[-1].rto_target, rpo_target=ps[-1].rpo_target)
            for key, ps in sorted(grouped.items())]
