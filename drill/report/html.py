"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched) that prints to PDF."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from drill.durations import format_duration
from drill.evidence import FingerprintEvidence
from drill.report import svg
from drill.report.controls import controls_view
from drill.report.history import scenario_id
from drill.report.model import LoadedRun
from drill.report.view import TREND_RUNS, measure_text, metric_met, summarize, tightest, trends
from drill.results import ScenarioResult

KNOWN_EVIDENCE = ("stores", "backups", "fingerprints", "markers", "counts", "seeded", "health", "freshness",
                  "self_test")


def _environment() -> Any:
    import jinja2  # imported here: only the HTML report needs it
    env = jinja2.Environment(loader=jinja2.PackageLoader("drill.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.filters["duration"] = format_duration
    env.filters["value"] = value_text
    return env


_ENV: Any = None


def value_text(key: str, value: Any) -> str:
    """An evidence value as a person reads it: times as UTC, durations as durations, the rest as JSON."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.endswith("_at") or key in ("recovery_point",):
            return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat(timespec="milliseconds")
        if key.endswith("seconds"):
            return format_duration(float(value))
        if key == "size":
            return f"{value:,} bytes"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _fingerprint_rows(entry: FingerprintEvidence) -> list[dict[str, Any]]:
    before = entry.before.get("parts", {}) or {}
    after = entry.after.get("parts", {}) or {}
    rows = []
    for part in sorted(set(before) | set(after)):
        b, a = before.get(part), after.get(part)
        rows.append({
            "part": part,
            "count_before": b.get("count") if b else None, "count_after": a.get("count") if a else None,
            "content_before": (b or {}).get("content"), "content_after": (a or {}).get("content"),
            "same": b is not None and a is not None and b == a,
            "schema_same": b is not None and a is not None and b.get("schema") == a.get("schema")})
    return rows


def _evidence(scenario: ScenarioResult) -> dict[str, Any]:
    ev = scenario.evidence
    fingerprints = [{
        "store": store, "backup": entry.backup, "total_before": entry.before.get("total"),
        "total_after": entry.after.get("total"), "unit": entry.unit, "label": entry.part_label,
        "rows": _fingerprint_rows(entry), "extras_before": entry.before.get("extras") or {},
        "extras_after": entry.after.get("extras") or {},
        "differences": [d.get("message", str(d)) if isinstance(d, dict) else str(d) for d in entry.differences]}
        for store, entry in ev.fingerprints.items()]
    sections = ev.to_dict()  # the sections without a table of their own are shown as JSON, as recorded
    return {
        "stores": ev.stores, "backups": ev.backups, "fingerprints": fingerprints, "markers": ev.markers,
        "writers": {store: m for store, m in ev.markers.items() if isinstance(m, dict) and "interval_seconds" in m},
        "recovery_points": {store: m for store, m in ev.markers.items()
                            if isinstance(m, dict) and "recovery_point" in m},
        "counts": [{"what": k, "expected": c.expected, "actual": c.actual, "at_least": c.at_least,
                    "scaled_from": c.scaled_from,
                    "met": c.met}
                   for k, c in ev.counts.items()],
        "seeded": ev.seeded, "health": [_health_row(check) for check in ev.health if isinstance(check, dict)],
        "freshness": ev.freshness, "self_test": ev.self_test,
        "other": {k: json.dumps(v, indent=2, sort_keys=True, default=str)
                  for k, v in sections.items() if k not in KNOWN_EVIDENCE}}


def _health_row(check: dict[str, Any]) -> dict[str, Any]:
    """One health check as a table row: an HTTP endpoint's status, or a query's first value on a store."""
    if "url" in check:
        what, kind = check["url"], "HTTP GET"
    else:
        what, kind = f"{check.get('query', '?')} on {check.get('store', '?')}", "SQL query"
    expected, actual = check.get("expected"), check.get("status", check.get("actual"))
    return {"kind": kind, "what": what, "expected": expected, "actual": actual,
            "same": expected is not None and str(expected) == str(actual),
            "seconds": check.get("seconds"), "error": check.get("error")}


def context(loaded: LoadedRun) -> dict[str, Any]:
    run = loaded.run
    all_trends = trends(loaded)
    scenarios = []
    for index, s in enumerate(run.scenarios, 1):
        trend = all_trends.get(scenario_id(s.feature, s.name))
        charts = {}
        if trend is not None:
            recent = trend.points[-TREND_RUNS:]
            for metric in ("rto", "rpo"):
                target = tightest(s, metric)
                charts[metric] = svg.trend(metric, [svg.TrendPoint(
                    row.label, row.point.rto_seconds if metric == "rto" else row.point.rpo_seconds, row.point.status,
                    row.current) for row in recent], target.target_seconds if target else None)
        gauges = {}
        for metric in ("rto", "rpo"):
            target = tightest(s, metric)
            gauges[metric] = svg.gauge(metric, s.rto_seconds if metric == "rto" else s.rpo_seconds,
                                       target.target_seconds if target else None, metric_met(s, metric))
        scenarios.append({
            "anchor": f"s{index}", "result": s, "rto_text": measure_text(s, "rto"),
            "rpo_text": measure_text(s, "rpo"), "gauges": gauges, "timeline": svg.timeline(s.phases, s.started_at,
                                                                                             s.ended_at),
            "trend_charts": charts, "quarters": trend.quarters if trend else [],
            "runs_in_trend": len(trend.points) if trend else 0, "evidence": _evidence(s)})
    return {"run": run, "loaded": loaded, "summary": summarize(loaded), "scenarios": scenarios,
            "controls": controls_view(loaded),
            "generated_at": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
            "trend_runs": TREND_RUNS}


def render_html(loaded: LoadedRun) -> str:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    from markupsafe import Markup

    ctx = context(loaded)
    for s in ctx["scenarios"]:  # charts are built here with every text escaped
        s["gauges"] = {k: Markup(v) for k, v in s["gauges"].items()}
        s["timeline"] = Markup(s["timeline"])
        s["trend_charts"] = {k: Markup(v) for k, v in s["trend_charts"].items()}
    return str(_ENV.get_template("report.html.j2").render(**ctx))
