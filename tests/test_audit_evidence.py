"""Audit evidence from real drill runs: controls in the report, `drill status`, Prometheus metrics, the badge and
the evidence pack, each judged against the runs' own results.json and history by this test's own reading.

One project, two `drill run`s on real servers: throwaway PostgreSQL and Redis, and a password-protected
PostgreSQL started here, outside drill (tests/live_servers.py), standing in for production; drill reaches it
only by URL as its owner role, and its backup comes from the repository. Run 1 passes; run 2 plants a
changed row in the user database's restore, so that scenario fails and its last success stays in run 1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, DrillRun, drill_env, run_drill
from tests.live_servers import LivePostgres
from tests.oracles import pg_tables

FEATURE = '''@control:SOC2-CC7.5
Feature: audited restores

  @tier:critical @control:ISO27001-A.8.13
  Scenario: the user database restores from its latest backup
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 300 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup{planted}
    Then "userdb" matches its state at the backup

  @tier:important @control:FAST-1
  Scenario: the cache restores from its latest snapshot
    Given the Redis store "cache"
    And "cache" is seeded with 200 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup

  Scenario: production's latest backup restores into a copy
    Given the PostgreSQL store "proddb"
    And the latest backup of "proddb" in the repository
    When "proddb" is restored from its latest backup into "proddb_drill"
    Then "proddb_drill" matches the state of "proddb" at the backup
'''
PLANTED = '''
    And SQL is run on "userdb":
      """
      UPDATE users SET full_name = 'Mallory' WHERE id = 7
      """'''

CONFIG = '''[repository]
path = "repo"

[stores.proddb]
kind = "postgres"
provision = "live"
url_env = "PRODDB_URL"

[controls."SOC2-CC7.5"]
title = "Recovery plans are tested"
every = "90 days"

[controls."ISO27001-A.8.13"]
title = "Information backup: backups are restored and tested"
every = "1 day"

[controls.FAST-1]
title = "A control far too frequent to keep"
every = "1 second"
'''

USERDB = "the user database restores from its latest backup"
CACHE = "the cache restores from its latest snapshot"
PROD = "production's latest backup restores into a copy"
# What the feature file tags, as this test knows it (not as drill records it).
CONTROL_SCENARIOS = {"SOC2-CC7.5": {USERDB, CACHE, PROD}, "ISO27001-A.8.13": {USERDB}, "FAST-1": {CACHE}}
EVERY = {"SOC2-CC7.5": 90 * 86400, "ISO27001-A.8.13": 86400, "FAST-1": 1}
EVERY_TEXT = {"SOC2-CC7.5": "90 days", "ISO27001-A.8.13": "1 day", "FAST-1": "1 second"}


@dataclass
class Audit:
    root: Path
    runs: list[DrillRun]  # oldest first

    @property
    def latest(self) -> dict[str, Any]:
        results = self.runs[-1].results
        assert results is not None
        return results

    def run_dir(self, index: int = -1) -> Path:
        results = self.runs[index].results
        assert results is not None
        return self.root / "reports" / results["run_id"]

    def drill(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drill", *args], cwd=self.root, capture_output=True, text=True,
                              env=drill_env(env), timeout=300)


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    root = tmp_path_factory.mktemp("audit")
    (root / "drill.toml").write_text(CONFIG, encoding="utf-8")
    (root / "features").mkdir()
    feature = root / "features" / "audit.feature"
    with LivePostgres() as prod:  # started here, outside drill; drill gets the owner role's URL only
        prod.create_database("proddb")
        prod.seed_ledger("proddb", rows=300)
        before = (pg_tables(prod, "proddb"), prod.databases())
        env = {"PRODDB_URL": prod.url("proddb")}
        backup = run_drill(root, "backup", "proddb", env=env)
        assert backup.code == 0, backup.output
        runs = []
        for planted in ("", PLANTED):
            feature.write_text(FEATURE.format(planted=planted), encoding="utf-8")
            runs.append(run_drill(root, "run", env=env))
        # The drills read production and restored copies elsewhere: its data and databases are as they were.
        assert (pg_tables(prod, "proddb"), prod.databases()) == before
    yield Audit(root, runs)


def _results(audit: Audit) -> list[dict[str, Any]]:
    found = [r.results for r in audit.runs]
    assert all(isinstance(r, dict) for r in found)
    return [r for r in found if r is not None]


def _ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _stores(scenario: dict[str, Any]) -> list[str]:
    return sorted(scenario["evidence"].get("stores", {}))


def test_the_runs_are_what_the_evidence_is_about(audit: Audit) -> None:
    first, second = audit.runs
    assert first.code == 0, first.output
    assert {s["status"] for s in _results(audit)[0]["scenarios"]} == {"passed"}
    assert second.code == 1, second.output
    assert second.scenario(USERDB)["status"] == "failed"
    assert second.scenario(CACHE)["status"] == "passed" and second.scenario(PROD)["status"] == "passed"
    [prod_backup] = second.scenario(PROD)["evidence"]["backups"]
    assert prod_backup["source"] == "repository"
    assert set(audit.latest["controls"]) == set(CONTROL_SCENARIOS)


# --- the report's Controls section ----------------------------------------------------------------------------


def _control_rows(html: str) -> dict[str, str]:
    section = html[html.index('<section id="controls">'):]
    section = section[:section.index("</section>")]
    rows = {}
    for chunk in section.split('<tr class="control" ')[1:]:
        control = re.search(r'data-control="([^"]+)"', chunk)
        assert control is not None
        rows[control.group(1)] = chunk[:chunk.index("</tr>")]
    return rows


def _successes(results: list[dict[str, Any]], control: str) -> list[dt.datetime]:
    """Start times of the runs in which a scenario tagged with `control` passed (the test's own reckoning)."""
    return [dt.datetime.fromisoformat(r["started_at"]) for r in results
            if any(s["name"] in CONTROL_SCENARIOS[control] and s["status"] == "passed" for s in r["scenarios"])]


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_the_report_shows_each_control_with_its_drills_and_whether_its_frequency_was_kept(audit: Audit) -> None:
    results = _results(audit)
    html = (audit.run_dir() / "report.html").read_text(encoding="utf-8")
    assert html.index('id="summary"') < html.index('id="controls"') < html.index('class="scenario"')
    rows = _control_rows(html)
    assert set(rows) == set(CONTROL_SCENARIOS)
    end = dt.datetime.fromisoformat(results[-1]["ended_at"])
    for control, names in CONTROL_SCENARIOS.items():
        row = rows[control]
        assert f"<td>every {EVERY_TEXT[control]}</td>" in row
        for name in names:  # every drill that evidences it, with its latest result
            latest = next(s for s in results[-1]["scenarios"] if s["name"] == name)
            assert f'<span class="badge {latest["status"]}">{latest["status"].upper()}</span> {name}' \
                   .replace("'", "&#39;") in row, (control, name)
        successes = _successes(results, control)
        assert f"<td>{_utc(successes[-1])}<br>" in row
        overdue = (end - successes[-1]).total_seconds() > EVERY[control]
        assert f'data-state="{"overdue" if overdue else "kept"}"' in row, row
        lapses = sum(1 for a, b in itertools.pairwise(successes) if (b - a).total_seconds() > EVERY[control])
        assert (f"{lapses} lapse(s) in the history" in row) == (lapses > 0), row
    # The planted fault: the user database's latest result is FAILED, yet its control is kept by run 1's success.
    iso = rows["ISO27001-A.8.13"]
    assert '<span class="badge failed">FAILED</span> the user database restores' in iso and "1/2 passed" in iso
    assert 'data-state="kept"' in iso and _utc(dt.datetime.fromisoformat(results[0]["started_at"])) in iso
    # The Markdown summary (a CI job summary) carries the same verdicts.
    md = (audit.run_dir() / "summary.md").read_text(encoding="utf-8")
    assert "### Controls" in md
    for control in CONTROL_SCENARIOS:
        overdue = (end - _successes(results, control)[-1]).total_seconds() > EVERY[control]
        line = next(x for x in md.splitlines() if x.startswith(f"| {control}: "))
        assert f"| {EVERY_TEXT[control]} |" in line and ("| ❌ OVERDUE" if overdue else "| ✅ kept") in line, line
    # A one-second control cannot be kept between runs that take longer: its lapse is named.
    assert _successes(results, "FAST-1")[1] - _successes(results, "FAST-1")[0] > dt.timedelta(seconds=1)
    assert "1 lapse(s) in the history" in rows["FAST-1"]


# --- drill status, the metrics, the badge --------------------------------------------------------------------


def _expected_latest(results: list[dict[str, Any]], name: str, key: str) -> float | None:
    values = [s[key] for r in results for s in r["scenarios"] if s["name"] == name and s[key] is not None]
    return values[-1] if values else None


def _last_success(results: list[dict[str, Any]], name: str) -> float:
    return [_ts(s["ended_at"]) for r in results for s in r["scenarios"] if s["name"] == name
            and s["status"] == "passed"][-1]


def _verified_backup_times(results: list[dict[str, Any]]) -> dict[str, float]:
    newest: dict[str, float] = {}
    for r in results:
        for s in r["scenarios"]:
            if s["status"] != "passed":
                continue
            for b in s["evidence"].get("backups", []):
                newest[b["store"]] = max(newest.get(b["store"], 0.0), b["consistent_at"])
    return newest


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, frozenset((k, v) for k, v in sample.labels.items() if k not in ("job", "instance"))):
            sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def _check_metrics_against_results(samples: dict[tuple[str, frozenset[tuple[str, str]]], float],
                                   results: list[dict[str, Any]], as_of: dt.datetime) -> None:
    checked = 0
    for scenario in results[-1]["scenarios"]:
        for store in _stores(scenario):
            labels = frozenset({("store", store), ("scenario", scenario["name"])})
            assert samples[("drill_last_success_timestamp_seconds", labels)] == pytest.approx(
                _last_success(results, scenario["name"]), abs=0.002)
            for metric in ("rto", "rpo"):
                expected = _expected_latest(results, scenario["name"], f"{metric}_seconds")
                found = samples.get((f"drill_{metric}_seconds", labels))
                assert found == (None if expected is None else pytest.approx(expected)), (metric, labels)
            assert samples[("drill_last_run_passed", labels)] == (1.0 if scenario["status"] == "passed" else 0.0)
            checked += 1
    assert checked >= 3
    for store, consistent in _verified_backup_times(results).items():
        assert samples[("drill_backup_age_seconds", frozenset({("store", store)}))] == pytest.approx(
            as_of.timestamp() - consistent, abs=0.002)
    for control in CONTROL_SCENARIOS:
        last = _successes(results, control)[-1]
        overdue = (as_of - last).total_seconds() > EVERY[control]
        assert samples[("drill_control_overdue", frozenset({("control", control)}))] == (1.0 if overdue else 0.0)
    assert samples[("drill_results_intact", frozenset())] == 1.0


def test_prometheus_metrics_match_the_results_of_the_real_runs(audit: Audit, tmp_path: Path) -> None:
    results = _results(audit)
    as_of = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
    out = tmp_path / "textfile" / "drill.prom"
    done = audit.drill("status", "--format", "prometheus", "--as-of", as_of.isoformat(), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and not list(out.parent.glob(".drill.prom.*"))  # written whole, then renamed
    samples = _metrics(out.read_text(encoding="utf-8"))
    _check_metrics_against_results(samples, results, as_of)
    # Run 2 failed the user database: its last success is run 1's, not run 2's.
    userdb = frozenset({("store", "userdb"), ("scenario", USERDB)})
    assert samples[("drill_last_success_timestamp_seconds", userdb)] == pytest.approx(
        _ts(results[0]["scenarios"][0]["ended_at"]), abs=0.002)
    assert samples[("drill_control_overdue", frozenset({("control", "ISO27001-A.8.13")}))] == 0.0


def test_a_control_whose_last_success_is_older_than_its_frequency_is_overdue(audit: Audit) -> None:
    """ISO27001-A.8.13 (every 1 day): its only drill failed in run 2, so its last success is run 1's. A day and an
    hour after that success, `drill status` and the metrics say it is overdue; the 90-day control is not."""
    results = _results(audit)
    last = _successes(results, "ISO27001-A.8.13")[-1]
    assert last == dt.datetime.fromisoformat(results[0]["started_at"])
    later = last + dt.timedelta(days=1, hours=1)
    text = audit.drill("status", "--as-of", later.isoformat())
    assert text.returncode == 0, text.stderr
    assert "ISO27001-A.8.13 (Information backup: backups are restored and tested), every 1 day: OVERDUE" in text.stdout
    assert "SOC2-CC7.5 (Recovery plans are tested), every 90 days: kept" in text.stdout
    assert "overdue controls: FAST-1, ISO27001-A.8.13" in text.stdout
    status = json.loads(audit.drill("status", "--json", "--as-of", later.isoformat()).stdout)
    assert status["overdue_controls"] == ["FAST-1", "ISO27001-A.8.13"]
    iso = next(c for c in status["controls"] if c["id"] == "ISO27001-A.8.13")
    assert iso["state"] == "overdue" and iso["last_success_run"] == results[0]["run_id"]
    assert iso["age_seconds"] == pytest.approx((later - last).total_seconds(), abs=0.01)
    metrics = _metrics(audit.drill("status", "--format", "prometheus", "--as-of", later.isoformat()).stdout)
    assert metrics[("drill_control_overdue", frozenset({("control", "ISO27001-A.8.13")}))] == 1.0
    assert metrics[("drill_control_overdue", frozenset({("control", "SOC2-CC7.5")}))] == 0.0
    _check_metrics_against_results(metrics, results, later)
    # An hour before the day is up, the same control is kept.
    earlier = json.loads(audit.drill("status", "--json", "--as-of", (last + dt.timedelta(hours=23)).isoformat()
                                     ).stdout)
    assert "ISO27001-A.8.13" not in earlier["overdue_controls"]


def test_status_per_store_last_result_verified_backup_and_trend(audit: Audit) -> None:
    results = _results(audit)
    as_of = dt.datetime.now(tz=dt.UTC)
    done = audit.drill("status", "--json", "--as-of", as_of.isoformat())
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["runs"] == 2 and status["latest_run"]["run_id"] == results[-1]["run_id"]
    assert status["integrity"] == {"intact": True, "problems": []}
    assert set(status["stores"]) == {"userdb", "cache", "proddb"}
    userdb = status["stores"]["userdb"]
    assert userdb["last_result"]["status"] == "failed" and userdb["last_result"]["run_id"] == results[1]["run_id"]
    [run1_backup] = results[0]["scenarios"][0]["evidence"]["backups"]
    assert userdb["last_verified_backup"]["id"] == run1_backup["id"]  # run 2's backup did not verify
    assert userdb["last_verified_backup"]["sha256"] == run1_backup["sha256"]
    assert userdb["last_verified_backup"]["age_seconds"] == pytest.approx(
        as_of.timestamp() - run1_backup["consistent_at"], abs=0.01)
    [prod_backup] = results[1]["scenarios"][2]["evidence"]["backups"]
    assert status["stores"]["proddb"]["last_verified_backup"]["id"] == prod_backup["id"]
    cache = next(s for s in status["scenarios"] if s["name"] == CACHE)
    assert cache["rto_trend"] == [r["scenarios"][1]["rto_seconds"] for r in results]
    assert cache["rpo_trend"] == [r["scenarios"][1]["rpo_seconds"] for r in results]
    assert cache["rto_target_seconds"] == 7200 and cache["stores"] == ["cache"]
    text = audit.drill("status").stdout
    assert "store userdb\n  last drill:           failed " in text
    assert f"last verified backup: {run1_backup['id']}, data from " in text
    assert "RTO " in text and "last 2 runs, oldest first:" in text


def test_status_sees_tampered_results(audit: Audit, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(audit.root / "reports", copy / "reports")
    path = copy / "reports" / audit.latest["run_id"] / "results.json"
    data = json.loads(path.read_text())
    data["scenarios"][0]["status"] = "passed"  # the failed drill made to look good
    path.write_text(json.dumps(data))
    done = subprocess.run([sys.executable, "-m", "drill", "status", "--format", "prometheus"], cwd=copy,
                          capture_output=True, text=True, env=drill_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert _metrics(done.stdout)[("drill_results_intact", frozenset())] == 0.0
    text = subprocess.run([sys.executable, "-m", "drill", "status"], cwd=copy, capture_output=True, text=True,
                          env=drill_env(), timeout=120).stdout
    assert "INTEGRITY: 1 problem(s)" in text


def test_status_bad_input(audit: Audit, tmp_path: Path) -> None:
    bad = audit.drill("status", "--as-of", "yesterday")
    assert bad.returncode == 2 and "--as-of 'yesterday' is not an ISO 8601 time" in bad.stderr
    empty = subprocess.run([sys.executable, "-m", "drill", "status"], cwd=tmp_path, capture_output=True, text=True,
                           env=drill_env(), timeout=120)
    assert empty.returncode == 2 and "no reports directory; run `drill run` first" in empty.stderr
    unset = audit.drill("status", "--push-url-env", "NO_SUCH_PUSHGATEWAY_VAR")
    assert unset.returncode == 2 and "NO_SUCH_PUSHGATEWAY_VAR is not set" in unset.stderr and unset.stdout == ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """Prometheus' own Pushgateway (Debian's prometheus-pushgateway), on a free port, ready when /-/ready says so."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.fail("prometheus-pushgateway is not installed: run ./dev test (it installs it) or apt-get install "
                    "prometheus-pushgateway")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "pushgateway.log").open("w")
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Pushgateway did not start: {(tmp_path / 'pushgateway.log').read_text()[-2000:]}")
            time.sleep(0.1)  # polling readiness, bounded by the deadline
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_metrics_pushed_to_a_real_pushgateway(audit: Audit, pushgateway: str) -> None:
    results = _results(audit)
    as_of = dt.datetime.now(tz=dt.UTC)
    done = audit.drill("status", "--format", "json", "--as-of", as_of.isoformat(), "--push-url-env", "MY_GATEWAY",
                       env={"MY_GATEWAY": pushgateway})
    assert done.returncode == 0, done.stderr
    assert f"pushed the metrics to the Pushgateway at {pushgateway}" in done.stderr
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as reply:
        exposed = reply.read().decode()
    samples = _metrics(exposed)
    assert 'job="drill"' in exposed
    _check_metrics_against_results(samples, results, as_of)


def test_the_documented_alert_rule_fires_after_26_hours_without_a_successful_drill(tmp_path: Path) -> None:
    """The sample rules of docs/monitoring.md, checked by Prometheus' promtool: valid, and firing when (and only
    when) userdb has had no successful drill for 26 hours."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run ./dev test (it installs Debian's prometheus) or apt-get install "
                    "prometheus")
    page = (REPO / "docs" / "monitoring.md").read_text(encoding="utf-8")
    block = page[page.index("<!-- alert-rules -->"):]
    rules = block[block.index("```yaml\n") + 8:block.index("\n```", block.index("```yaml"))] + "\n"
    (tmp_path / "drill.rules.yml").write_text(rules)
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "drill.rules.yml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The last success at t=0 (Unix time 0 in promtool's clock); another store's drill passing all along.
    (tmp_path / "test.yml").write_text(f"""rule_files: [{tmp_path / 'drill.rules.yml'}]
evaluation_interval: 1m
tests:
  - interval: 5m
    input_series:
      - series: 'drill_last_success_timestamp_seconds{{store="userdb",scenario="restore"}}'
        values: '0+0x400'
      - series: 'drill_last_success_timestamp_seconds{{store="cache",scenario="restore"}}'
        values: '0+300x400'
      - series: 'drill_control_overdue{{control="ISO27001-A.8.13"}}'
        values: '0x100 1x300'
    alert_rule_test:
      - eval_time: 25h
        alertname: DrillNotPassing
        exp_alerts: []
      - eval_time: 27h
        alertname: DrillNotPassing
        exp_alerts:
          - exp_labels: {{severity: page, store: userdb}}
            exp_annotations:
              summary: "no successful drill of userdb for 26 hours"
      - eval_time: 7h
        alertname: DrillControlOverdue
        exp_alerts: []
      - eval_time: 10h
        alertname: DrillControlOverdue
        exp_alerts:
          - exp_labels: {{severity: ticket, control: ISO27001-A.8.13}}
            exp_annotations:
              summary: "control ISO27001-A.8.13 is overdue: no passing drill within its frequency"
""")
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                            timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_badge_per_suite(audit: Audit, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    badge = tmp_path / "badge.svg"
    done = audit.drill("status", "--format", "badge", "-o", str(badge), "--label", "nightly drills")
    assert done.returncode == 0, done.stderr
    svg = ET.fromstring(badge.read_text())
    ns = {"s": "http://www.w3.org/2000/svg"}
    texts = [t.text for t in svg.iterfind(".//s:text", ns)]
    passed = sum(1 for s in audit.latest["scenarios"] if s["status"] == "passed")
    overdue = 1  # FAST-1 (every second) is always overdue by the time status runs
    assert texts == ["nightly drills", f"{passed}/3 passed, {overdue} control overdue"]
    message = svg.find(".//s:rect[@class='message']", ns)
    assert message is not None and message.get("fill") == "#c62828"  # red: a drill's latest run failed
    assert svg.get("aria-label") == f"nightly drills: {texts[1]}"


# --- the evidence pack ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pack(audit: Audit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "evidence.zip"
    done = audit.drill("report", "pack", str(audit.run_dir()), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"run {audit.latest['run_id']}" in done.stdout
    return out


def test_a_pack_from_a_real_run_holds_the_evidence_and_verifies(audit: Audit, pack: Path) -> None:
    results = audit.latest
    with zipfile.ZipFile(pack) as archive:
        names = archive.namelist()
        members = {name: archive.read(name) for name in names}
    index = json.loads(members["index.json"])
    # The index lists every other member with its sha256 and size (checked here with hashlib, not drill).
    assert sorted(m["name"] for m in index["members"]) == sorted(n for n in names if n != "index.json")
    for entry in index["members"]:
        assert hashlib.sha256(members[entry["name"]]).hexdigest() == entry["sha256"], entry["name"]
        assert len(members[entry["name"]]) == entry["size"]
    assert {"results.json", "report.html", "report.pdf", "backups.json", "backups/SHA256SUMS", "environment.json",
            "drill.toml", "controls.json", "history.jsonl"} <= set(names)
    assert members["results.json"] == (audit.run_dir() / "results.json").read_bytes()
    history = (audit.root / "reports" / "history.jsonl").read_text().splitlines()
    assert members["history.jsonl"].decode().splitlines() == history[:2]
    # The backups used, with their sha256s; the repository manifest of production's backup, byte for byte.
    used = json.loads(members["backups.json"])["backups"]
    recorded = [b for s in results["scenarios"] for b in s["evidence"]["backups"]]
    assert sorted((b["id"], b["sha256"]) for b in used) == sorted((b["id"], b["sha256"]) for b in recorded)
    [prod] = [b for b in recorded if b["source"] == "repository"]
    manifest_name = f"backups/proddb/{prod['id']}/manifest.json"
    assert members[manifest_name] == (audit.root / "repo" / "proddb" / prod["id"] / "manifest.json").read_bytes()
    for b in recorded:
        assert f"{b['sha256']}  {Path(b['path']).name}" in members["backups/SHA256SUMS"].decode()
    environment = json.loads(members["environment.json"])
    assert environment["config_digest"] == results["config_digest"] and environment["digest_matches_run"] is True
    assert environment["tool_versions"]["backups"][prod["id"]] == prod["tool_versions"]
    assert environment["packed_by"]["pdf_printed_by"].lower().startswith(("chromium", "google chrome"))
    assert members["drill.toml"].decode() == (audit.root / "drill.toml").read_text()
    controls = {c["id"]: c for c in json.loads(members["controls.json"])}
    assert set(controls) == set(CONTROL_SCENARIOS) and controls["ISO27001-A.8.13"]["state"] == "kept"
    assert 'id="controls"' in members["report.html"].decode()
    done = audit.drill("report", "pack", "--verify", str(pack))
    assert done.returncode == 0, done.stderr
    assert f"{len(index['members'])} members match the index" in done.stdout
    assert "history chain of 2 entries intact" in done.stdout and "unsigned" in done.stdout


def test_the_pack_pdf_is_a4_and_opens_with_the_summary_and_controls(pack: Path, audit: Audit) -> None:
    import pypdfium2

    with zipfile.ZipFile(pack) as archive:
        pdf = pypdfium2.PdfDocument(archive.read("report.pdf"))
    assert len(pdf) >= 3  # the summary page, then a page per drill
    for page in pdf:
        width, height = page.get_size()
        assert width == pytest.approx(595.28, abs=1) and height == pytest.approx(841.89, abs=1)  # A4 in points
    first = pdf[0].get_textpage().get_text_range()
    assert "Disaster-recovery drill report" in first and audit.latest["run_id"] in first
    assert "FAILED" in first and "Controls" in first and "ISO27001-A.8.13" in first


def _flip_byte_inside(pack: Path, member: str, out: Path) -> None:
    """One byte of `member`'s stored bytes changed, in place in the zip (the zip structure untouched)."""
    blob = bytearray(pack.read_bytes())
    with zipfile.ZipFile(pack) as archive:
        info = archive.getinfo(member)
    name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    blob[start + info.compress_size // 2] ^= 0x01
    out.write_bytes(bytes(blob))


def test_one_changed_byte_fails_verify_naming_the_member(pack: Path, audit: Audit, tmp_path: Path) -> None:
    from drill.report.pack import verify_pack

    changed = tmp_path / "changed.zip"
    _flip_byte_inside(pack, "report.html", changed)
    done = audit.drill("report", "pack", "--verify", str(changed))
    assert done.returncode == 1
    assert "drill: TAMPERED: member report.html:" in done.stderr, done.stderr
    assert "verification failed" in done.stderr
    with zipfile.ZipFile(pack) as archive:
        names = archive.namelist()
    for member in names:  # whichever member the byte is in, verify names it
        _flip_byte_inside(pack, member, changed)
        problems = verify_pack(changed).problems
        assert problems and f"member {member}:" in problems[0], (member, problems)


def _rezip(pack: Path, out: Path, change: dict[str, bytes | None]) -> None:
    """The pack rewritten as a valid zip with some members replaced (or removed: None) or added."""
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = change.get(info.filename, source.read(info.filename))
            if data is not None:
                target.writestr(info.filename, data)
        for name, data in change.items():
            if name not in source.namelist() and data is not None:
                target.writestr(name, data)


def test_an_edited_member_in_a_well_formed_zip_fails_verify(pack: Path, audit: Audit, tmp_path: Path) -> None:
    from drill.report.pack import verify_pack

    with zipfile.ZipFile(pack) as archive:
        results = archive.read("results.json")
        history = archive.read("history.jsonl")
    edited = results.replace(b'"status": "failed"', b'"status": "passed"', 1)
    assert edited != results
    out = tmp_path / "edited.zip"
    _rezip(pack, out, {"results.json": edited})
    problems = verify_pack(out).problems
    assert any(p.startswith("member results.json: sha256") and "does not match the index" in p for p in problems)
    assert any("member results.json: its content does not match its content_sha256" in p for p in problems)
    _rezip(pack, out, {"history.jsonl": b"\n".join(history.splitlines()[1:]) + b"\n"})  # first entry cut off
    assert any(p.startswith("member history.jsonl") for p in verify_pack(out).problems)
    _rezip(pack, out, {"extra.txt": b"planted"})
    assert verify_pack(out).problems == ["member extra.txt: not in the index (added to the pack)"]
    _rezip(pack, out, {"report.pdf": None})
    assert verify_pack(out).problems == ["member report.pdf: listed in the index but missing from the pack"]


def test_the_signature_travels_with_the_results(audit: Audit, tmp_path: Path) -> None:
    """A results.json.sig next to the results (issue 13 writes it) goes into the pack; one for other results fails."""
    from drill.report.pack import verify_pack

    copy = tmp_path / "copy"
    shutil.copytree(audit.root / "reports", copy / "reports")
    shutil.copy(audit.root / "drill.toml", copy / "drill.toml")
    run_dir = copy / "reports" / audit.latest["run_id"]
    signature = json.dumps({"algorithm": "ed25519", "key_id": "test-key", "signature": "AAAA",
                            "signed_sha256": audit.latest["content_sha256"]}).encode()
    (run_dir / "results.json.sig").write_bytes(signature)
    out = tmp_path / "signed.zip"
    done = subprocess.run([sys.executable, "-m", "drill", "report", "pack", str(run_dir), "-o", str(out), "--no-pdf"],
                          cwd=copy, capture_output=True, text=True, env=drill_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as archive:
        assert archive.read("results.json.sig") == signature
        assert "report.pdf" not in archive.namelist()
    verdict = verify_pack(out)
    assert verdict.problems == [] and verdict.signed
    other = json.dumps({"algorithm": "ed25519", "key_id": "test-key", "signature": "AAAA",
                        "signed_sha256": "0" * 64}).encode()
    forged = tmp_path / "forged.zip"
    _rezip(out, forged, {"results.json.sig": other})
    assert any(p.startswith("member results.json.sig: signs other results") for p in verify_pack(forged).problems)


def test_pack_refuses_tampered_results_and_says_what_it_needs(audit: Audit, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(audit.root / "reports", copy / "reports")
    path = copy / "reports" / audit.latest["run_id"] / "results.json"
    data = json.loads(path.read_text())
    data["status"] = "passed"
    path.write_text(json.dumps(data))

    def drill(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drill", *args], cwd=copy, capture_output=True, text=True,
                              env=drill_env(env), timeout=300)

    refused = drill("report", "pack", str(path.parent), "-o", "out.zip")
    assert refused.returncode == 2 and "failed their integrity check, and a pack would vouch for them" in refused.stderr
    assert not (copy / "out.zip").exists()
    no_browser = audit.drill("report", "pack", "-o", str(tmp_path / "x.zip"), env={"DRILL_CHROMIUM": "/nonexistent"})
    assert no_browser.returncode == 2
    assert "the PDF is printed by headless Chromium" in no_browser.stderr and "--no-pdf" in no_browser.stderr
    not_a_pack = tmp_path / "junk.zip"
    not_a_pack.write_bytes(b"not a zip")
    junk = drill("report", "pack", "--verify", str(not_a_pack))
    assert junk.returncode == 1 and "junk.zip: not a zip file" in junk.stderr
    missing = drill("report", "pack", "--verify", str(tmp_path / "nope.zip"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


# --- screenshots for the docs ---------------------------------------------------------------------------------


def _distinct_bytes(png: bytes) -> int:
    """How many different byte values the decompressed image data holds (a flat image has a handful)."""
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_screenshots_of_the_controls_section_and_the_pdf_first_page(pack: Path, tmp_path: Path) -> None:
    """tests/screenshots.py, the script that made docs/images/, run on this real run in headless Chromium.
    DRILL_UPDATE_SCREENSHOTS=1 writes them into docs/images/ too."""
    with zipfile.ZipFile(pack) as archive:
        archive.extractall(tmp_path / "pack")
    out = tmp_path / "shots"
    done = subprocess.run([sys.executable, "-m", "tests.screenshots", str(tmp_path / "pack" / "report.html"),
                           str(tmp_path / "pack" / "report.pdf"), str(out)], cwd=REPO, capture_output=True,
                          text=True, env=drill_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("controls-section.png", "evidence-pdf-page1.png"):
        shot = (out / name).read_bytes()
        if os.environ.get("DRILL_UPDATE_SCREENSHOTS") == "1":
            (REPO / "docs" / "images" / name).write_bytes(shot)
        width, height = _png_size(shot)
        committed = _png_size((REPO / "docs" / "images" / name).read_bytes())
        assert width == committed[0] and height > 100, (name, width, height, committed)
        assert _distinct_bytes(shot) > 20, name  # a drawn page, not one flat colour
    assert _png_size((out / "evidence-pdf-page1.png").read_bytes()) == (620, 877)
