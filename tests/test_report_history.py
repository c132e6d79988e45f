"""The history's trend and hash chain on hand-made runs (no server: these test the bookkeeping alone).

The reports of real runs are tested in test_reports.py; here quarters and chain edits that a real
test would take months or hand-editing to produce.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from drill.report.history import read_history, record_run, verify
from drill.report.html import render_html
from drill.report.integrity import seal
from drill.report.model import load
from drill.report.view import trends


def _run(reports: Path, run_id: str, started_at: str, rto: float, status: str = "passed") -> Path:
    scenario: dict[str, Any] = {
        "feature": "features/a.feature", "feature_name": "a", "name": "userdb restore", "line": 3, "tags": [],
        "status": status, "rto_seconds": rto, "rpo_seconds": rto / 2,
        "targets": [{"metric": "rto", "target_seconds": 60.0, "source": "@rto:1m", "measured_seconds": rto,
                     "met": rto <= 60}]}
    results = {"run_id": run_id, "started_at": started_at, "status": status, "scenarios": [scenario]}
    path = reports / run_id / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(seal(results), indent=2))
    record_run(reports, path)
    return path


def _four_quarters(tmp_path: Path) -> tuple[Path, list[Path]]:
    reports = tmp_path / "reports"
    paths = [_run(reports, f"r{i}", f"2026-{month:02d}-15T10:00:00+00:00", rto, status)
             for i, (month, rto, status) in enumerate([(2, 10.0, "passed"), (3, 20.0, "passed"), (5, 30.0, "passed"),
                                                        (8, 90.0, "failed"), (11, 15.0, "passed")])]
    return reports, paths


def test_the_trend_has_a_row_per_quarter(tmp_path: Path) -> None:
    _, paths = _four_quarters(tmp_path)
    loaded = load(paths[-1])
    [trend] = trends(loaded).values()
    assert [row.point.rto_seconds for row in trend.points] == [10.0, 20.0, 30.0, 90.0, 15.0]
    assert [row.current for row in trend.points] == [False, False, False, False, True]
    assert [(q.quarter, q.runs, q.passed, q.rto_worst) for q in trend.quarters] == [
        ("2026-Q1", 2, 2, 20.0), ("2026-Q2", 1, 1, 30.0), ("2026-Q3", 1, 0, 90.0), ("2026-Q4", 1, 1, 15.0)]
    html = render_html(loaded)
    assert html.count('class="point"') == 10  # five runs, RTO and RPO charts
    assert '<td>2026-Q3</td><td class="num">1</td><td class="num">0</td><td class="num">1m30s</td>' in html
    # A report of an older run shows the history up to that run only.
    [older] = trends(load(paths[1])).values()
    assert [row.run_id for row in older.points] == ["r0", "r1"]


def test_the_chain_links_every_entry(tmp_path: Path) -> None:
    reports, _ = _four_quarters(tmp_path)
    entries = read_history(reports)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == "0" * 64
    assert all(later.prev == earlier.hash for earlier, later in pairwise(entries))
    assert verify(reports) == []


def test_an_edited_history_entry_is_named(tmp_path: Path) -> None:
    reports, _ = _four_quarters(tmp_path)
    history = reports / "history.jsonl"
    lines = history.read_text().splitlines()
    entry = json.loads(lines[3])
    entry["status"] = "passed"  # the failed August drill rewritten as passed
    entry["scenarios"][0]["status"] = "passed"
    lines[3] = json.dumps(entry)
    history.write_text("\n".join(lines) + "\n")
    problems = [str(p) for p in verify(reports)]
    assert "run r3: history entry 4 was edited (its hash does not match)" in problems


def test_reordered_entries_break_the_chain(tmp_path: Path) -> None:
    reports, _ = _four_quarters(tmp_path)
    history = reports / "history.jsonl"
    lines = history.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    history.write_text("\n".join(lines) + "\n")
    problems = [str(p) for p in verify(reports)]
    assert any(p.startswith("run r2: history entry 3 does not follow entry 1") for p in problems), problems


def test_a_garbled_history_line_is_reported_with_its_line(tmp_path: Path) -> None:
    reports, _ = _four_quarters(tmp_path)
    history = reports / "history.jsonl"
    history.write_text(history.read_text() + "{oops\n")
    [problem] = verify(reports)
    assert f"{history}:6: not a history entry" in str(problem)
