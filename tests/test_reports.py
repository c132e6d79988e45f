"""Reports rendered from real drill results: passed, failed (a planted changed row) and interrupted runs.

One project runs `drill run` three times on real PostgreSQL clusters (a passing and a failing
scenario; a run interrupted with Ctrl-C; the first feature again, so the trend has two points),
then every format is read back and checked, and the history's tamper evidence is attacked.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LONG_POSTGRES_FEATURE, DrillRun, drill_env, run_drill, start_waiting_drill

REPORT_FEATURE = '''Feature: reported drills
  @rto:30m @rpo:1h
  Scenario: a faithful restore
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 200 rows
    And a backup of "shop" is taken
    When "shop" is lost
    And "shop" is restored from its latest backup
    Then "shop" matches its state at the backup
    And the recovery time is within 30 minutes

  @tier:critical
  Scenario: a restore with a planted changed row
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 200 rows
    And a backup of "shop" is taken
    When "shop" is lost
    And "shop" is restored from its latest backup
    And SQL is run on "shop":
      """
      UPDATE users SET full_name = 'Mallory' WHERE id = 7
      """
    Then "shop" matches its state at the backup

  @rto:1ms
  Scenario: a restore that misses its recovery time target
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 200 rows
    And a backup of "shop" is taken
    When "shop" is lost
    And "shop" is restored from its latest backup
    Then "shop" matches its state at the backup
'''

FORMAT_FILES = ("report.html", "summary.md", "junit.xml", "cucumber.json")


@dataclass
class Project:
    root: Path
    first: DrillRun
    interrupted: dict[str, Any]
    interrupted_dir: Path
    interrupted_output: str
    second: DrillRun

    def run_dir(self, results: dict[str, Any]) -> Path:
        return self.root / "reports" / results["run_id"]


def _interrupted_run(root: Path) -> tuple[str, Path]:
    drill = start_waiting_drill(root, "run", "interrupt", timeout=120)  # readiness: the drill says it is waiting
    output = drill.stop(signal.SIGINT, timeout=60)
    assert drill.proc.returncode == 130, output
    newest = max((root / "reports").glob("*/results.json"), key=lambda p: p.stat().st_mtime)
    return output, newest.parent


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("reported")
    (root / "features").mkdir()
    (root / "features" / "report.feature").write_text(REPORT_FEATURE, encoding="utf-8")
    (root / "interrupt").mkdir()
    (root / "interrupt" / "long.feature").write_text(LONG_POSTGRES_FEATURE, encoding="utf-8")
    first = run_drill(root, "run", "features")
    assert first.results is not None, first.output
    output, interrupted_dir = _interrupted_run(root)
    interrupted = json.loads((interrupted_dir / "results.json").read_text())
    second = run_drill(root, "run", "features")
    assert second.results is not None, second.output
    return Project(root, first, interrupted, interrupted_dir, output, second)


def _drill(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill", *args], cwd=project.root, capture_output=True, text=True,
                          env=drill_env(), timeout=120)


def test_the_runs_are_what_the_reports_are_about(project: Project) -> None:
    assert project.first.code == 1, project.first.output
    assert project.first.scenario("a faithful restore")["status"] == "passed"
    failed = project.first.scenario("a restore with a planted changed row")
    assert failed["status"] == "failed"
    assert project.interrupted["status"] == "interrupted"
    for results in (project.first.results, project.interrupted, project.second.results):
        assert isinstance(results, dict) and len(results["content_sha256"]) == 64


def test_drill_run_writes_every_format_at_its_end(project: Project) -> None:
    assert project.first.results is not None
    run_dir = project.run_dir(project.first.results)
    for name in FORMAT_FILES:
        assert (run_dir / name).is_file(), name
        assert (project.interrupted_dir / name).is_file(), f"interrupted run: {name}"
    assert f"reports: reports/{project.first.results['run_id']}/report.html" in project.first.stdout
    assert "reports: " in project.interrupted_output


def test_html_report_of_a_failed_run(project: Project) -> None:
    results = project.first.results
    assert results is not None
    html = (project.run_dir(results) / "report.html").read_text()
    # The summary comes first: verdict, drills passed, targets met.
    assert html.index('id="summary"') < html.index('class="scenario"')
    assert '<span class="verdict failed" id="verdict">FAILED</span>' in html
    assert "<b>1/3</b>drills passed" in html
    targets = [t for s in results["scenarios"] for t in s["targets"]]
    met = sum(1 for t in targets if t["met"] is True)
    assert f"<b>{met}/{len(targets)}</b>targets met" in html
    assert '<span class="missed">1 missed</span>' in html
    assert "/ target 1ms (" in html and "of target) MISSED" in html  # the gauge of the missed target
    # Steps with status and duration; the failing step and the difference it found.
    assert "<b>Then</b> &#34;shop&#34; matches its state at the backup" in html
    assert html.count('<span class="badge failed">FAILED</span>') >= 2  # the scenario and its step
    assert "table public.users: content differs with the same count" in html
    assert "VerificationError</b> in step <code>Then &#34;shop&#34; matches its state at the backup</code>" in html
    # Evidence: backup ids and sha256, fingerprints before and after, server and tool versions.
    failed = project.first.scenario("a restore with a planted changed row")
    backup = failed["evidence"]["backups"][0]
    assert backup["id"] in html and backup["sha256"] in html
    prints = failed["evidence"]["fingerprints"]["shop"]
    assert prints["before"]["parts"]["public.users"]["content"] in html
    assert prints["after"]["parts"]["public.users"]["content"] in html
    assert failed["evidence"]["stores"]["shop"]["server_version"] in html
    assert "pg_dump" in html
    # RTO and RPO drawn against their targets; a timeline of the phases; the trend.
    for chart in ("gauge-rto", "gauge-rpo", "timeline", "trend-rto", "trend-rpo"):
        assert f'data-chart="{chart}"' in html, chart
    passed = project.first.scenario("a faithful restore")
    assert 'class="target"' in html and f"target {'30m'}" in html
    assert passed["phases"] and all(f">{p['name']} shop<" in html for p in passed["phases"])
    # Metadata and sign-off.
    for value in (results["run_id"], results["operator"], results["host"], results["config_digest"],
                  results["drill_version"], results["content_sha256"]):
        assert value in html, value
    assert 'id="signoff"' in html and "Auditor / reviewer" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_html_report_of_an_interrupted_run(project: Project) -> None:
    html = (project.interrupted_dir / "report.html").read_text()
    assert '<span class="verdict interrupted" id="verdict">INTERRUPTED</span>' in html
    assert "<b>When</b> 10 minutes pass</td>" in html.replace("\n", "")
    assert '<span class="badge interrupted">INTERRUPTED</span>' in html
    assert '<span class="badge not_run">NOT_RUN</span>' in html
    assert "RPO markers" in html  # what ran is still evidence


def test_markdown_summary(project: Project) -> None:
    assert project.first.results is not None
    md = (project.run_dir(project.first.results) / "summary.md").read_text()
    assert md.startswith(f"## Drill run {project.first.results['run_id']}: ❌ FAILED")
    assert "**1/3 drills passed**" in md
    assert "| a restore that misses its recovery time target | ❌ failed | " in md and " / 1ms MISSED |" in md
    assert "| a faithful restore | ✅ passed |" in md
    assert "| a restore with a planted changed row | ❌ failed |" in md
    assert "in step `Then \"shop\" matches its state at the backup`" in md
    assert "table public.users: content differs" in md
    interrupted = (project.interrupted_dir / "summary.md").read_text()
    assert "INTERRUPTED" in interrupted and "stopped at step `When 10 minutes pass`" in interrupted


def test_junit_xml(project: Project) -> None:
    assert project.first.results is not None
    root = ET.parse(project.run_dir(project.first.results) / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"a faithful restore", "a restore with a planted changed row",
                          "a restore that misses its recovery time target"}
    missed = {p.get("name"): p.get("value") for p in cases["a restore that misses its recovery time target"].iter(
        "property")}
    assert missed["drill.target.rto[@rto:1ms].met"] == "false"
    assert missed["drill.target.rto[@rto:1ms]"] == "0.001"
    passed = project.first.scenario("a faithful restore")
    props = {p.get("name"): p.get("value") for p in cases["a faithful restore"].iter("property")}
    assert float(props["drill.rto_seconds"] or 0) == pytest.approx(passed["rto_seconds"])
    assert props["drill.target.rto[@rto:30m]"] == "1800.0"
    assert props["drill.target.rto[@rto:30m].met"] == "true"
    assert cases["a faithful restore"].find("failure") is None
    failure = cases["a restore with a planted changed row"].find("failure")
    assert failure is not None and "content differs" in (failure.text or "")
    interrupted = ET.parse(project.interrupted_dir / "junit.xml").getroot()
    [case] = list(interrupted.iter("testcase"))
    error = case.find("error")
    assert error is not None and error.get("type") == "interrupted"


def test_cucumber_json(project: Project) -> None:
    assert project.first.results is not None
    features = json.loads((project.run_dir(project.first.results) / "cucumber.json").read_text())
    [feature] = features
    assert feature["uri"] == "features/report.feature" and feature["keyword"] == "Feature"
    scenarios = {e["name"]: e for e in feature["elements"]}
    planted = scenarios["a restore with a planted changed row"]
    statuses = [s["result"]["status"] for s in planted["steps"]]
    assert statuses[-1] == "failed" and set(statuses[:-1]) == {"passed"}
    assert "content differs" in planted["steps"][-1]["result"]["error_message"]
    assert {t["name"] for t in planted["tags"]} == {"@tier:critical"}
    assert all(isinstance(s["result"]["duration"], int) for s in scenarios["a faithful restore"]["steps"])
    missed = scenarios["a restore that misses its recovery time target"]
    # its steps passed; the missed target fails it where Cucumber reporters look (an after hook)
    assert {s["result"]["status"] for s in missed["steps"]} == {"passed"}
    assert missed["after"][0]["result"]["status"] == "failed"
    assert "1ms" in missed["after"][0]["result"]["error_message"]
    [long] = json.loads((project.interrupted_dir / "cucumber.json").read_text())
    steps = {s["name"]: s["result"] for s in long["elements"][0]["steps"]}
    assert steps["10 minutes pass"]["status"] == "failed" and "interrupted" in steps["10 minutes pass"]["error_message"]
    assert steps['"db" is lost']["status"] == "skipped"


def test_trend_shows_every_run_of_a_drill(project: Project) -> None:
    assert project.second.results is not None
    history = [json.loads(line) for line in (project.root / "reports" / "history.jsonl").read_text().splitlines()]
    assert [h["run_id"] for h in history] == [project.first.results["run_id"] if project.first.results else "",
                                              project.interrupted["run_id"], project.second.results["run_id"]]
    html = (project.run_dir(project.second.results) / "report.html").read_text()
    section = html[html.index("1. a faithful restore"):html.index("2. a restore with a planted changed row")]
    trend = section[section.index('data-chart="trend-rto"'):]
    trend = trend[:trend.index("</svg>")]
    assert trend.count('class="point"') == 2  # this run and the first one
    assert "2 run(s) in the history" in section
    quarter = time.strftime("%Y-Q") + str((time.gmtime().tm_mon - 1) // 3 + 1)
    assert f"<td>{quarter}</td><td class=\"num\">2</td><td class=\"num\">2</td>" in section


def test_verify_passes_on_untouched_results(project: Project) -> None:
    done = _drill(project, "report", "--verify")
    assert done.returncode == 0, done.stderr
    assert "verified 3 run(s)" in done.stdout and "chain is intact" in done.stdout
    one = _drill(project, "report", "--verify", str(project.interrupted_dir))
    assert one.returncode == 0, one.stderr
    assert f"verified run {project.interrupted['run_id']}" in one.stdout


def _copy(project: Project, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(project.root / "reports", copy / "reports")
    return copy


def _verify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill", "report", "--verify", *args], cwd=cwd,
                          capture_output=True, text=True, env=drill_env(), timeout=120)


def test_an_edited_result_fails_verify(project: Project, tmp_path: Path) -> None:
    assert project.first.results is not None
    copy = _copy(project, tmp_path)
    run_id = project.first.results["run_id"]
    path = copy / "reports" / run_id / "results.json"
    data = json.loads(path.read_text())
    data["scenarios"][1]["status"] = "passed"  # someone makes the failed drill look good
    path.write_text(json.dumps(data, indent=2))
    done = _verify(copy)
    assert done.returncode == 1
    assert f"TAMPERED: run {run_id}: edited: reports/{run_id}/results.json: its content does not match" in done.stderr
    assert "verification failed: 1 problem(s)" in done.stderr  # the other runs are fine
    alone = _verify(copy, str(path))
    assert alone.returncode == 1 and f"run {run_id}: edited" in alone.stderr
    # A report of the edited results says so in its summary.
    rendered = subprocess.run([sys.executable, "-m", "drill", "report", str(path), "--format", "html"], cwd=copy,
                              capture_output=True, text=True, env=drill_env(), timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    assert 'id="integrity-warning"' in (path.parent / "report.html").read_text()
    assert "failed its integrity check" in rendered.stderr


def test_a_resealed_edit_fails_verify(project: Project, tmp_path: Path) -> None:
    from drill.report.integrity import seal

    assert project.first.results is not None
    copy = _copy(project, tmp_path)
    run_id = project.first.results["run_id"]
    path = copy / "reports" / run_id / "results.json"
    data = json.loads(path.read_text())
    data["scenarios"][0]["rto_seconds"] = 0.001
    path.write_text(json.dumps(seal(data), indent=2))  # a consistent digest, but not the recorded one
    done = _verify(copy)
    assert done.returncode == 1
    assert f"run {run_id}: edited: reports/{run_id}/results.json is not the results recorded in history" in done.stderr


def test_a_removed_run_fails_verify(project: Project, tmp_path: Path) -> None:
    copy = _copy(project, tmp_path)
    run_id = project.interrupted["run_id"]
    shutil.rmtree(copy / "reports" / run_id)
    done = _verify(copy)
    assert done.returncode == 1
    assert f"TAMPERED: run {run_id}: removed: reports/{run_id}/results.json is missing" in done.stderr


def test_a_removed_history_entry_fails_verify(project: Project, tmp_path: Path) -> None:
    copy = _copy(project, tmp_path)
    history = copy / "reports" / "history.jsonl"
    lines = history.read_text().splitlines()
    history.write_text("\n".join([lines[0], lines[2]]) + "\n")  # drop the interrupted run's entry
    done = _verify(copy)
    assert done.returncode == 1
    assert "does not follow entry 1: an earlier entry was removed" in done.stderr
    assert f"run {project.interrupted['run_id']}: reports/{project.interrupted['run_id']}/results.json is not in " \
           "the history" in done.stderr


def test_report_command_formats_and_bad_input(project: Project, tmp_path: Path) -> None:
    assert project.first.results is not None
    run_dir = project.run_dir(project.first.results)
    md = _drill(project, "report", str(run_dir), "--format", "md", "--output", "-")
    assert md.returncode == 0 and md.stdout == (run_dir / "summary.md").read_text()
    out = tmp_path / "out"
    both = _drill(project, "report", str(run_dir / "results.json"), "--format", "junit,json", "-o", str(out))
    assert both.returncode == 0, both.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cucumber.json", "junit.xml"]
    latest = _drill(project, "report", "--format", "md", "-o", "-")  # no RESULTS: the latest run
    assert project.second.results is not None and project.second.results["run_id"] in latest.stdout
    bad = _drill(project, "report", str(run_dir), "--format", "pdf")
    assert bad.returncode == 2 and "unknown report format 'pdf'; choose from html, md, junit, json" in bad.stderr
    missing = _drill(project, "report", "reports/nope")
    assert missing.returncode == 2
    assert "reports/nope: no such results file; give a reports/<run-id>/results.json" in missing.stderr
    (tmp_path / "junk.json").write_text("{not json")
    junk = _drill(project, "report", str(tmp_path / "junk.json"))
    assert junk.returncode == 2 and "not readable JSON" in junk.stderr


@pytest.fixture(scope="module")
def chromium() -> Any:
    """Debian's chromium (./dev installs it). Missing, the test fails: a report nobody opened is unproven."""
    from tests.chromium import Chromium, chromium_binary

    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium is not installed: run ./dev (it installs Debian's chromium) or apt-get install chromium")
    with Chromium(binary) as browser:
        yield browser


def test_html_renders_in_headless_chromium(project: Project, chromium: Any) -> None:
    assert project.second.results is not None
    for run_dir in (project.run_dir(project.second.results), project.interrupted_dir):
        page = chromium.open(run_dir / "report.html")
        assert page.console_errors == [], page.console_errors
        assert page.requests == [(run_dir / "report.html").resolve().as_uri()], "the report fetched something"
        assert page.title.startswith("Drill report ")
        kinds = {c["chart"] for c in page.charts}
        assert {"gauge-rto", "gauge-rpo", "timeline", "trend-rto", "trend-rpo"} <= kinds
        for chart in page.charts:  # laid out with a size, and holding drawn shapes
            assert chart["width"] > 100 and chart["height"] > 20, chart
            assert chart["shapes"] >= 1, chart
        if run_dir != project.interrupted_dir:  # measured: background and bar (and a target line)
            assert all(c["shapes"] >= 2 for c in page.charts if c["chart"].startswith("gauge")), page.charts
        assert page.pdf.startswith(b"%PDF") and len(page.pdf) > 20_000  # it prints


def test_the_chromium_check_catches_console_errors_and_fetches(chromium: Any, tmp_path: Path) -> None:
    """The checks above must bite: a page that logs an error and fetches a resource is caught."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<html><head><title>bad</title></head><body><svg class="chart" data-chart="x"></svg>'
                         '<img src="missing.png"><script>console.error("planted error")</script></body></html>')
    page = chromium.open(page_file)
    assert any("planted error" in e for e in page.console_errors), page.console_errors
    assert (tmp_path / "missing.png").as_uri() in page.requests
    assert page.charts == [{"chart": "x", "width": 300, "height": 150, "shapes": 0}]


def test_report_benchmark_smoke(project: Project, tmp_path: Path) -> None:
    """bench/report_bench.py on copies of a real run's scenarios: 200 of them render in seconds."""
    from tests.conftest import REPO

    assert project.first.results is not None
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "report_bench.py"), "--scenarios", "200",
                           "--history", "3", "--out", str(out),
                           "--from", str(project.run_dir(project.first.results) / "results.json")],
                          capture_output=True, text=True, env=drill_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert set(figures["formats"]) == {"html", "md", "junit", "json"}
    assert figures["total_seconds"] < 30, figures  # seconds, even on a loaded CI machine
    assert "report of 200 scenarios" in done.stdout


def test_a_format_that_cannot_render_does_not_stop_the_others(project: Project, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from drill.errors import DrillError
    from drill.report import render

    def broken(loaded: Any) -> str:
        raise DrillError("the HTML report needs jinja2: pip install 'drill[report]'")

    monkeypatch.setitem(render.FORMATS, "html", ("report.html", broken))
    assert project.first.results is not None
    problems: list[str] = []
    written = render.write_reports(project.run_dir(project.first.results) / "results.json", list(render.FORMATS),
                                   tmp_path, problems=problems)
    assert [p.name for p in written] == ["summary.md", "junit.xml", "cucumber.json"]
    assert problems == ["report.html: the HTML report needs jinja2: pip install 'drill[report]'"]
    with pytest.raises(DrillError, match="needs jinja2"):
        render.write_reports(project.run_dir(project.first.results) / "results.json", ["html"], tmp_path)
