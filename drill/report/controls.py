"""The report's Controls section: each control the run recorded, evaluated over the history up to the run."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from drill.controls import ControlStatus, evaluate, format_period, occurrences, parse_time
from drill.report.history import points_of
from drill.report.model import LoadedRun


def control_statuses(loaded: LoadedRun) -> list[ControlStatus]:
    """As of the end of the reported run: were the controls kept, from this run and the runs before it."""
    run = loaded.run
    if not run.controls:
        return []
    runs = [(e.run_id, e.started_at, e.scenarios) for e in loaded.history]
    if loaded.history_entry is None:  # a run outside the history still counts for itself
        runs.append((run.run_id, run.started_at, points_of({"scenarios": [asdict(s) for s in run.scenarios]})))
    as_of = parse_time(run.ended_at or run.started_at) or dt.datetime.now(tz=dt.UTC)
    return evaluate(run.controls, occurrences(runs), as_of)


def when_text(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def controls_view(loaded: LoadedRun) -> list[dict[str, object]]:
    """What the HTML Controls section shows, one row per control."""
    rows: list[dict[str, object]] = []
    for status in control_statuses(loaded):
        if status.state == "kept":
            verdict = f"kept: next drill due by {when_text(status.due_at)}"
        elif status.state == "overdue":
            verdict = (f"OVERDUE: no passing drill for {format_period(status.age_seconds or 0)} "
                       f"(due {when_text(status.due_at)})")
        elif status.state == "never passed":
            verdict = "OVERDUE: no drill evidencing it has passed"
        else:
            verdict = "NO EVIDENCE: no drill is tagged with it in the history"
        closed = [lapse for lapse in status.lapses if not lapse.open]
        rows.append({
            "id": status.id, "title": status.title, "every": format_period(status.every), "state": status.state,
            "kept": status.state == "kept", "verdict": verdict,
            "last_success": when_text(status.last_success_at), "last_success_run": status.last_success_run,
            "successes": status.successes,
            "lapses": [f"{when_text(lapse.since)} → {when_text(lapse.until)} ({format_period(lapse.seconds)})"
                       for lapse in closed],
            "scenarios": [{"name": s.name, "status": s.latest_status, "when": when_text(s.latest_at),
                           "runs": s.runs, "passed": s.passed} for s in status.scenarios]})
    return rows
