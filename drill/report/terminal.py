"""The terminal summary: scenario, status, RTO measured / target, RPO measured / target."""

from __future__ import annotations

from drill.durations import format_duration
from drill.results import RunResult, ScenarioResult


def _measure(result: ScenarioResult, metric: str) -> str:
    measured = result.rto_seconds if metric == "rto" else result.rpo_seconds
    targets = [t for t in result.targets if t.metric == metric]
    shown = "not measured" if measured is None else format_duration(measured)
    if not targets:
        return shown
    tightest = min(targets, key=lambda t: t.target_seconds)
    # A target that was never evaluated (an interrupted scenario) is not called missed.
    verdict = " MISSED" if any(t.met is False for t in targets) else ""
    return f"{shown} / {format_duration(tightest.target_seconds)}{verdict}"


def summary_table(run: RunResult, width: int = 48) -> list[str]:
    rows = [("scenario", "status", "RTO measured / target", "RPO measured / target")]
    for scenario in run.scenarios:
        name = scenario.name if len(scenario.name) <= width else scenario.name[: width - 1] + "…"
        rows.append((name, scenario.status.upper(), _measure(scenario, "rto"), _measure(scenario, "rpo")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    passed = sum(1 for s in run.scenarios if s.status == "passed")
    lines.append(f"{passed}/{len(run.scenarios)} scenarios passed; run {run.run_id}: {run.status.upper()}")
    return lines
