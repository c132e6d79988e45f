"""Whole-system restores: PostgreSQL, Redis and MongoDB (real local servers) restored in the order of
drill.toml (stages, depends_on), independent stores in parallel, each with its own RTO; then the health
checks (an HTTP endpoint the test serves, a SQL query, drill's own health service).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drill.config import load_config
from drill.errors import ConfigError
from drill.system import plan
from tests.conftest import REPO, closed_port, run_bench_smoke, run_drill, start_paused_drill

STORES = '''
    Given the PostgreSQL store "userdb"
    And the Redis store "cache"
    And the MongoDB store "notifydb"
    And "userdb" is seeded with 3000 rows
    And "cache" is seeded with 3000 keys
    And "notifydb" is seeded with 1500 documents
    And a backup of "userdb" is taken
    And a backup of "cache" is taken
    And a backup of "notifydb" is taken
    When "userdb" is lost
    And "cache" is lost
    And "notifydb" is lost
'''


def _project(root: Path, scenarios: str, toml: str | None = None) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "system.feature").write_text("Feature: whole system\n" + scenarios, encoding="utf-8")
    if toml is not None:
        (root / "drill.toml").write_text(toml, encoding="utf-8")
    return root


@pytest.fixture
def http_endpoint() -> Iterator[str]:
    """A real local HTTP service: /ok answers 200, /broken answers 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/ok" else 500
            body = b"fine" if status == 200 else b"database connection refused"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


ORDERED_TOML = '''
[drill]
stages = ["infrastructure", "data", "application"]

[stores.cache]
kind = "redis"
stage = "infrastructure"

[stores.userdb]
kind = "postgres"
stage = "data"
rto = "10 minutes"

[stores.notifydb]
kind = "mongodb"
stage = "data"
depends_on = ["userdb"]
'''


def test_stores_are_restored_in_the_configured_order_and_each_gets_its_rto(tmp_path: Path,
                                                                          http_endpoint: str) -> None:
    scenarios = f'''
  Scenario: ordered
{STORES}    And the whole system is restored
    Then the HTTP endpoint "{http_endpoint}/ok" answers 200
    And the query "SELECT count(*) FROM users" on "userdb" returns "600"
    And the recovery time of "cache" is within 10 minutes
    And "notifydb" holds 1500 documents
'''
    run = run_drill(_project(tmp_path, scenarios, ORDERED_TOML), "run")
    assert run.code == 0, run.output
    scenario = run.scenario("ordered")
    system = scenario["evidence"]["system"]
    assert [w["stores"] for w in system["plan"]] == [["cache"], ["userdb"], ["notifydb"]]
    stores = system["stores"]
    # Each wave starts once the one before it is restored and verified.
    assert stores["userdb"]["started_after_seconds"] >= stores["cache"]["rto_seconds"]
    assert stores["notifydb"]["started_after_seconds"] >= stores["userdb"]["rto_seconds"]
    assert stores["userdb"]["rto_target_seconds"] == 600 and stores["userdb"]["rto_met"] is True
    assert stores["cache"]["rto_met"] is True
    for name in ("userdb", "cache", "notifydb"):
        assert scenario["evidence"]["fingerprints"][name]["differences"] == []
    assert scenario["rto_seconds"] >= stores["notifydb"]["rto_seconds"]
    checks = scenario["evidence"]["health"]
    assert checks[0]["status"] == 200 and checks[1]["actual"] == "600"


def test_independent_stores_are_restored_at_the_same_time(tmp_path: Path) -> None:
    scenarios = f'''
  Scenario: parallel
{STORES}    And the whole system is restored
'''
    run = run_drill(_project(tmp_path, scenarios), "run")
    assert run.code == 0, run.output
    system = run.scenario("parallel")["evidence"]["system"]
    assert [sorted(w["stores"]) for w in system["plan"]] == [["cache", "notifydb", "userdb"]]
    stores = system["stores"].values()
    # At the same time: every store's restore began before any of them had finished (their intervals
    # overlap), whatever the machine's load does to the start-up of each thread.
    assert max(s["started_after_seconds"] for s in stores) < min(s["rto_seconds"] for s in stores), stores
    assert system["seconds"] < system["sum_of_store_seconds"]
    assert system["seconds"] >= max(s["rto_seconds"] for s in stores) - 0.0005  # the evidence rounds to ms


def test_a_failing_health_check_names_the_endpoint_and_status(tmp_path: Path, http_endpoint: str) -> None:
    closed = closed_port()
    scenarios = f'''
  Scenario: broken service
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 100 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And the whole system is restored
    Then the HTTP endpoint "{http_endpoint}/broken" answers 200

  Scenario: wrong answer
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 100 rows
    Then the query "SELECT count(*) FROM users" on "userdb" returns "21"

  Scenario: nobody listening
    Given the PostgreSQL store "userdb"
    Then the HTTP endpoint "http://127.0.0.1:{closed.port}/health" answers 200
'''
    with closed:
        run = run_drill(_project(tmp_path, scenarios), "run", timeout=300)
    assert run.code == 1
    broken = " ".join(e["message"] for e in run.scenario("broken service")["errors"])
    assert f"the HTTP endpoint {http_endpoint}/broken answered 500, expected 200: database connection refused" \
        in broken
    wrong = " ".join(e["message"] for e in run.scenario("wrong answer")["errors"])
    assert "returned '20', expected '21'" in wrong
    nobody = " ".join(e["message"] for e in run.scenario("nobody listening")["errors"])
    assert f"http://127.0.0.1:{closed.port}/health did not answer" in nobody


def test_the_health_service_reports_a_lost_store(tmp_path: Path) -> None:
    scenarios = '''
  Scenario: healthy then not
    Given the PostgreSQL store "userdb"
    And the MongoDB store "notifydb"
    And "userdb" is seeded with 100 rows
    And a health service for the stores is running
    Then the HTTP endpoint "{health}/health" answers 200
    When "userdb" is lost
    Then the HTTP endpoint "{health}/health" answers 200
'''
    run = run_drill(_project(tmp_path, scenarios), "run")
    scenario = run.scenario("healthy then not")
    # The first check (every store up) passed with a 200; the second, after the loss, failed with a 503
    # that names the lost store and only it.
    statuses = [(s["text"], s["status"]) for s in scenario["steps"] if s["text"].startswith("the HTTP endpoint")]
    assert statuses == [('the HTTP endpoint "{health}/health" answers 200', "passed"),
                        ('the HTTP endpoint "{health}/health" answers 200', "failed")], run.output
    [healthy] = scenario["evidence"]["health"]
    assert healthy["status"] == 200 and healthy["url"].endswith("/health")
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "answered 503, expected 200" in messages, run.output
    body = json.loads(messages.split("expected 200: ", 1)[1])
    assert body["status"] == "unhealthy" and list(body["failures"]) == ["userdb"], body


def test_a_missed_store_rto_fails_the_restore_naming_the_store(tmp_path: Path) -> None:
    scenarios = '''
  Scenario: too slow
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 100 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And the whole system is restored
'''
    toml = '[stores.userdb]\nkind = "postgres"\nrto = "1 millisecond"\n'
    run = run_drill(_project(tmp_path, scenarios, toml), "run")
    messages = " ".join(e["message"] for e in run.scenario("too slow")["errors"])
    assert "recovery time of 'userdb'" in messages and "(stores.userdb.rto in drill.toml)" in messages
    assert run.scenario("too slow")["evidence"]["system"]["stores"]["userdb"]["rto_met"] is False


def test_a_failed_store_stops_the_later_waves(tmp_path: Path) -> None:
    scenarios = '''
  Scenario: first wave fails
    Given the PostgreSQL store "userdb"
    And the Redis store "cache"
    And "userdb" is seeded with 3000 rows
    And "cache" is seeded with 100 keys
    And a backup of "userdb" is taken
    And a backup of "cache" is taken
    And the restore of "userdb" may take at most 1 millisecond
    When the whole system is restored
'''
    toml = '[stores.userdb]\nkind = "postgres"\nstage = "infrastructure"\n'
    run = run_drill(_project(tmp_path, scenarios, toml), "run")
    scenario = run.scenario("first wave fails")
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "the whole-system restore stopped in wave 1" in messages, run.output
    assert "userdb: the restore of 'userdb' did not finish within its time limit" in messages
    assert "not restored (later waves): cache" in messages
    assert "cache" not in scenario["evidence"]["system"]["stores"]


def test_a_dependency_cycle_is_a_configuration_error(tmp_path: Path) -> None:
    toml = tmp_path / "drill.toml"
    toml.write_text('[stores.a]\nkind = "postgres"\ndepends_on = ["b"]\n[stores.b]\nkind = "redis"\n'
                    'depends_on = ["a"]\n')
    config = load_config(toml)
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        plan(["a", "b"], config)


def test_an_unknown_stage_is_refused_at_load(tmp_path: Path) -> None:
    toml = tmp_path / "drill.toml"
    toml.write_text('[stores.a]\nkind = "postgres"\nstage = "frontend"\n')
    with pytest.raises(ConfigError, match="stage 'frontend' is not one of the stages"):
        load_config(toml)


def test_the_bundled_full_system_feature_passes(tmp_path: Path) -> None:
    run = run_drill(tmp_path, "run", str(REPO / "features" / "full_system_restore.feature"))
    assert run.code == 0, run.output


def test_the_system_benchmark_smoke_run_reports_its_figures(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("system_bench.py", tmp_path / "system.json", timeout=600)
    (only,) = report["vs_slowest"]["rounds"]  # a smoke run: one round, no warm-up
    alone = {name: s["seconds"] for name, s in only["baseline"]["stores"].items()}
    assert set(alone) == set(only["drill"]["stores"]) == {"userdb", "cache", "notifydb"}
    assert only["baseline"]["seconds"] == max(alone.values())
    assert only["baseline"]["sum_of_stores_alone"] == sum(alone.values())
    assert only["ratio"] == only["drill"]["seconds"] / max(alone.values())
    assert report["parallel_vs_sum"]["median"] == only["drill"]["seconds"] / sum(alone.values())
    assert "whole-system restore (parallel) vs the slowest store alone" in stdout
    # The CPU counters: every store did some work while restored alone; the two-core bound follows from them.
    work = {name: s["busy_core_seconds"] for name, s in only["baseline"]["stores"].items()}
    assert all(seconds > 0 for seconds in work.values()), work
    assert only["baseline"]["core_seconds_alone"] == sum(work.values())
    cores = report["machine"]["cpus"]
    assert only["baseline"]["two_core_bound_ratio"] == max(max(alone.values()), sum(work.values()) / cores) / \
        max(alone.values())
    assert 0 < only["drill"]["busy_share"] <= 1.05  # a share of the machine's cores (sampling rounds a little)
    assert "bound on" in stdout and "cores busy during the parallel restore" in stdout
    # MongoDB's wire server (its own process, found in /proc) is measured: a share of one core (10 ms ticks: a
    # smoke run's short window may hold none).
    assert 0 <= only["baseline"]["stores"]["notifydb"]["server_core_share"] <= 1.05


def test_an_endpoint_password_never_shows_in_the_failure() -> None:
    from drill.errors import VerificationError
    from drill.health import check_http

    with closed_port() as closed, pytest.raises(VerificationError) as caught:
        check_http(f"http://probe:s3cret-pw-41@127.0.0.1:{closed.port}/health", 200, timeout=0.3)
    assert "s3cret-pw-41" not in str(caught.value) and "did not answer" in str(caught.value)


# -- the MongoDB verification hashed in worker processes (drill/hash_workers.py) ---------------------------


def _hashing_workers(pid: int) -> list[int]:
    """The worker processes drill `pid` spawned (multiprocessing's spawn_main), read from /proc: not drill's code."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


PARALLEL_SCENARIO = f'''
  Scenario: hashed in workers
{STORES}    And the whole system is restored
'''


def test_a_killed_hashing_worker_fails_the_store_with_its_message_and_leaves_no_process(tmp_path: Path) -> None:
    # Held where notifydb's verification has handed its first batch to a worker process.
    paused = start_paused_drill(_project(tmp_path, PARALLEL_SCENARIO), "hashing:notifydb", "run", timeout=240)
    workers = _hashing_workers(paused.proc.pid)
    assert workers, "the MongoDB verification should hash in a worker process"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # out of memory, or killed by someone: the pool is broken
    output = paused.finish(timeout=300)
    assert paused.proc.returncode == 1, output
    results = json.loads(next((tmp_path / "reports").glob("*/results.json")).read_text())
    [scenario] = results["scenarios"]
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "the whole-system restore stopped in wave 1" in messages, messages
    assert "notifydb: fingerprinting 'notifydb' failed: a hashing worker process ended" in messages, messages
    assert not any(m.startswith(("userdb:", "cache:")) for m in messages.split("\n  - ")), messages  # only it
    assert not [pid for pid in workers if _alive(pid)]
    assert not _hashing_workers(paused.proc.pid)


def test_ctrl_c_while_a_worker_hashes_stops_the_drill_and_leaves_no_worker(tmp_path: Path) -> None:
    paused = start_paused_drill(_project(tmp_path, PARALLEL_SCENARIO), "hashing:notifydb", "run", timeout=240)
    workers = _hashing_workers(paused.proc.pid)
    assert workers, "the MongoDB verification should hash in a worker process"
    paused.proc.send_signal(signal.SIGINT)  # Ctrl-C while the worker has the first batch
    output = paused.finish(timeout=300)  # the paused thread goes on and finds the hashing cancelled
    assert paused.proc.returncode == 130, output
    results = json.loads(next((tmp_path / "reports").glob("*/results.json")).read_text())
    assert results["status"] == "interrupted"
    assert not [pid for pid in workers if _alive(pid)], "a hashing worker outlived the drill"
