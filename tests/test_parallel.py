"""`drill run -n N` (pytest-xdist) and `--shard I/N` with `drill report merge`, run as a user runs them.

The bundled drills in two workers against a serial run; what each worker keeps private; scenarios
on one live store taking turns (with the control that throwaway ones overlap); shares planned from
the history (the plan recomputed here from the serial run's own durations); shards combined with
workers; and every refusal of `drill report merge`, each naming the share.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from drill.sharding import ShardError, parse_shard, plan
from tests.conftest import REPO, run_bench_smoke, run_drill
from tests.live_servers import LiveRedis
from tests.oracles import redis_state

QUICK = '''Feature: caches
  Scenario: cache one
    Given the Redis store "cache"
    And "cache" is seeded with 300 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup

  Scenario: cache two
    Given the Redis store "cache"
    And "cache" is seeded with 100 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup

  Scenario Outline: cache <n>
    Given the Redis store "cache"
    And "cache" is seeded with <n> keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" holds <n> keys

    Examples:
      | n  |
      | 10 |
      | 20 |
'''


def _outcomes(results: dict[str, Any]) -> list[tuple[str, str, int, str, bool]]:
    return [(s["feature"], s["name"], s["line"], s["status"], all(t["met"] is not False for t in s["targets"]))
            for s in results["scenarios"]]


def _quick(root: Path, toml: str = "") -> Path:
    (root / "features").mkdir(parents=True)
    (root / "features" / "caches.feature").write_text(QUICK)
    if toml:
        (root / "drill.toml").write_text(toml)
    return root


def test_the_bundled_drills_in_two_workers_match_a_serial_run(tmp_path: Path) -> None:
    # The nightly suite needs production's backups (tests/test_nightly.py): left out, as ./dev drill does.
    serial = run_drill(REPO, "run", "--quiet", "--tags", "not nightly", "-n", "0", "--report-dir",
                       str(tmp_path / "serial"), timeout=1200)
    workers = run_drill(REPO, "run", "--quiet", "--tags", "not nightly", "-n", "2", "--report-dir",
                        str(tmp_path / "workers"), timeout=1200)
    assert serial.code == 0 and workers.code == 0, serial.output[-3000:] + workers.output[-3000:]
    found = {}
    for folder in ("serial", "workers"):  # one results.json and one history entry per run
        [results] = list((tmp_path / folder).glob("*/results.json"))
        found[folder] = json.loads(results.read_text())
        assert len((tmp_path / folder / "history.jsonl").read_text().splitlines()) == 1
    assert _outcomes(found["workers"]) == _outcomes(found["serial"])  # same scenarios, order, outcomes, targets
    assert len(found["serial"]["scenarios"]) >= 20
    # Each worker kept its throwaway stores' backups (<backup_dir>/<store>/… in a serial run) in a private folder
    # of its own, gone afterwards. (PITR base backups are in private folders already; a runbook-style dump goes
    # to the path its feature names.)
    paths = [Path(b["path"]) for s in found["workers"]["scenarios"] for b in s["evidence"].get("backups", [])
             if b.get("source") == "drill" and Path(b["path"]).parent.name == b["store"]]
    assert len(paths) >= 15 and not any(REPO / "backups" in path.parents for path in paths), paths
    workers_used = {next(p for p in path.parents if p.name.startswith("drill-worker-")) for path in paths}
    assert len(workers_used) == 2, paths
    assert not any(folder.exists() for folder in workers_used)


def test_scenarios_on_one_live_store_never_overlap_across_workers(tmp_path: Path) -> None:
    def feature(store: str, keys: int) -> str:
        return "Feature: one store\n" + "".join(f'''
  Scenario: check {n}
    Given the Redis store "{store}"
    When 1 second passes
    Then "{store}" holds {keys} keys
''' for n in range(3))

    live, throwaway = tmp_path / "live", tmp_path / "throwaway"
    for folder, text in ((live, feature("live", 5)), (throwaway, feature("cache", 0))):
        (folder / "features").mkdir(parents=True)
        (folder / "features" / "one.feature").write_text(text)
    (live / "drill.toml").write_text('[stores.live]\nkind = "redis"\nprovision = "live"\nurl_env = "LIVE_URL"\n')
    with LiveRedis() as server:
        client: Any = server.client()
        for n in range(5):
            client.set(f"k{n}", n)
        before = redis_state(server.client)

        def spans(project: Path) -> list[tuple[datetime, datetime]]:
            run = run_drill(project, "run", "--quiet", "-n", "2", env={"LIVE_URL": server.url()})
            assert run.code == 0 and run.results, run.output
            return sorted((datetime.fromisoformat(s["started_at"]), datetime.fromisoformat(s["ended_at"]))
                          for s in run.results["scenarios"])

        def overlapping(found: list[tuple[datetime, datetime]]) -> bool:
            # A scenario's ended_at is stamped after its clean-up, a few ms after its store's turn is given up:
            # only an overlap of more than 0.3 s (each scenario waits 1 s on its store) counts.
            return any((earlier[1] - later[0]).total_seconds() > 0.3
                       for earlier, later in pairwise(found))

        on_live = spans(live)
        assert len(on_live) == 3 and not overlapping(on_live), on_live
        # Control: the same scenarios on a throwaway store do run at the same time in the two workers.
        assert overlapping(spans(throwaway))
        assert redis_state(server.client) == before


def test_parse_shard_is_1_based_and_names_the_mistake() -> None:
    assert parse_shard("2/3") == (2, 3)
    for bad, said in (("0/3", "between 1 and 3"), ("4/3", "between 1 and 3"), ("two", "write I/N")):
        with pytest.raises(ShardError, match=said):
            parse_shard(bad)


def test_the_plan_balances_by_duration_longest_first_and_by_count_without_history() -> None:
    keys = ["a", "b", "c", "d", "e"]
    assert plan(keys, [None] * 5, 2, "history") == ([1, 2, 1, 2, 1], "count")
    # Longest first onto the least loaded share: a=9 -> 1 (9); d=5 -> 2 (5); c=unknown, the median 4.5 -> 2 (9.5);
    # b=4 -> 1 (13); e=1 -> 2 (10.5).
    assert plan(keys, [9.0, 4.0, None, 5.0, 1.0], 2, "history") == ([1, 1, 2, 2, 2], "history")
    assert plan(keys, [9.0, 4.0, None, 5.0, 1.0], 2, "count") == ([1, 2, 1, 2, 1], "count")


def _lpt(seconds: dict[str, float], keys: list[str], count: int) -> dict[str, int]:
    """Longest-processing-time-first, written here independently of drill.sharding."""
    typical = statistics.median(seconds.values())
    loads = [0.0] * count
    chosen = {}
    for key in sorted(keys, key=lambda k: (-seconds.get(k, typical), keys.index(k))):
        share = min(range(count), key=lambda s: (loads[s], s))
        chosen[key] = share + 1
        loads[share] += seconds.get(key, typical)
    return chosen


def test_shares_are_planned_from_the_history_and_merge_into_one_run(tmp_path: Path) -> None:
    project = _quick(tmp_path / "p")
    serial = run_drill(project, "run", "--quiet")
    assert serial.code == 0 and serial.results, serial.output
    shares = []
    for index in (1, 2):  # share 2 in two workers: the controller still records the plan
        extra = ["-n", "2"] if index == 2 else []
        run = run_drill(project, "run", "--quiet", "--shard", f"{index}/2", "--output-dir", f"shares/{index}", *extra)
        assert run.code == 0 and run.results, run.output
        shares.append(run.results)
    by_key = {f"{s['feature']}:{s['line']}" + (f"[{s['nodeid'].rsplit('[', 1)[1].rstrip(']')}]"
                                                if "[" in s["nodeid"] else ""): s["seconds"]
              for s in serial.results["scenarios"]}
    order = shares[0]["shard"]["order"]
    assert sorted(order) == sorted(by_key) and shares[1]["shard"]["plan"] == shares[0]["shard"]["plan"]
    expected = _lpt({k: v for k, v in by_key.items()}, order, 2)
    for index, share in enumerate(shares, 1):
        assert share["shard"]["balanced_by"] == "history"
        assert share["shard"]["scenarios"] == [k for k in order if expected[k] == index]
    history = (project / "reports" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1  # shares are not runs of their own
    unmerged = run_drill(project, "report", "--verify")  # ... until a merged run in the history names them
    assert unmerged.code == 1 and unmerged.stderr.count("that no run in the history") == 2, unmerged.output
    merged = run_drill(project, "report", "merge", "shares", "-o", "merged")
    assert merged.code == 0, merged.output
    result = json.loads((project / "merged" / "results.json").read_text())
    assert _outcomes(result) == _outcomes(serial.results)
    assert [(m["index"], m["run_id"]) for m in result["merged_from"]] == [(1, shares[0]["run_id"]),
                                                                          (2, shares[1]["run_id"])]
    assert len((project / "reports" / "history.jsonl").read_text().splitlines()) == 2
    assert run_drill(project, "report", "--verify").code == 0


def test_merge_refuses_a_tampered_share_a_run_that_is_no_share_and_shares_of_different_plans(
        tmp_path: Path) -> None:
    project = _quick(tmp_path / "p")
    for spec, by in (("1/2", "count"), ("2/2", "count"), ("2/3", "count")):
        run = run_drill(project, "run", "--quiet", "--shard", spec, "--shard-by", by, "--output-dir",
                        f"s/{spec.replace('/', 'of')}")
        assert run.code == 0, run.output
    plain = run_drill(project, "run", "--quiet", "--output-dir", "plain")
    assert plain.code == 0, plain.output

    different = run_drill(project, "report", "merge", "s/1of2", "s/2of3")
    assert different.code == 2 and "the shares were planned differently" in different.stderr, different.output
    not_share = run_drill(project, "report", "merge", "s/1of2", "s/2of2", "plain")
    assert not_share.code == 2 and "plain/results.json: run" in not_share.stderr
    assert "is not a share of a sharded run" in not_share.stderr
    share = project / "s" / "2of2" / "results.json"
    share.write_text(share.read_text().replace('"passed"', '"failed"', 1))
    tampered = run_drill(project, "report", "merge", "s/1of2", "s/2of2")
    assert tampered.code == 2 and "s/2of2/results.json: its content does not match" in tampered.stderr, \
        tampered.output
    assert len((project / "reports" / "history.jsonl").read_text().splitlines()) == 1  # only the plain run


DUMPS = '''Feature: fresh dumps
  Scenario: dumps one
    Then the latest backup of "one" in "dumps/one_*.sql.gz" is at most 1 hour old

  Scenario: dumps two
    Then the latest backup of "two" in "dumps/two_*.sql.gz" is at most 1 hour old
'''


def test_a_share_whose_repair_failed_fails_the_merged_run_and_its_repair_is_carried_into_it(tmp_path: Path) -> None:
    """Share 1 starts beside a live store a killed drill left, which it cannot put back (drill.toml no longer
    configures it): its scenarios pass, its run fails. The merge must say so, not pass on the scenarios alone."""
    import shutil
    import socket
    import subprocess
    import time

    project = tmp_path / "p"
    (project / "features").mkdir(parents=True)
    (project / "features" / "dumps.feature").write_text(DUMPS)
    (project / "dumps").mkdir()
    for name in ("one", "two"):  # dated by their mtime: now
        (project / "dumps" / f"{name}_latest.sql.gz").write_bytes(b"")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a drill that was killed: its pid runs no more on this host
    journal = project / "backups" / ".drill-safety" / "gone" / "journal.json"
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps({"version": 1, "store": "gone", "kind": "redis", "location": "redis://gone",
                                   "pid": dead.pid, "host": socket.gethostname(), "started_at": time.time(),
                                   "changes": ["lost"]}))
    first = run_drill(project, "run", "--quiet", "--shard", "1/2", "--shard-by", "count", "--output-dir", "shares/1")
    assert first.code == 1, first.output
    share = json.loads((project / "shares" / "1" / "results.json").read_text())
    assert share["status"] == "failed" and [s["status"] for s in share["scenarios"]] == ["passed"], share
    [repair] = share["repairs"]
    assert repair["store"] == "gone" and repair["outcome"] == "NOT put back" and repair["ok"] is False, repair
    shutil.rmtree(journal.parent)  # checked by hand, as the message says; share 2 starts clean
    second = run_drill(project, "run", "--quiet", "--shard", "2/2", "--shard-by", "count", "--output-dir", "shares/2")
    assert second.code == 0, second.output
    assert json.loads((project / "shares" / "2" / "results.json").read_text())["repairs"] == []

    merged = run_drill(project, "report", "merge", "shares", "-o", "merged")
    assert merged.code == 1, merged.output
    result = json.loads((project / "merged" / "results.json").read_text())
    assert [s["status"] for s in result["scenarios"]] == ["passed", "passed"]  # the scenarios alone would pass
    assert result["status"] == "failed"
    assert result["repairs"] == share["repairs"]  # carried as share 1 recorded it
    assert [(m["index"], m["status"]) for m in result["merged_from"]] == [(1, "failed"), (2, "passed")]
    assert "shard 1/2" in merged.stderr and "live store gone left by a killed drill was NOT put back" in merged.stderr
    summary = (project / "merged" / "summary.md").read_text()
    assert "gone: NOT repaired (NOT put back)" in summary, summary
    assert 'id="repairs"' in (project / "merged" / "report.html").read_text()


def test_the_parallel_benchmark_runs_and_compares_outcomes(tmp_path: Path) -> None:
    report, printed = run_bench_smoke("parallel_bench.py", tmp_path / "parallel.json")
    assert report["smoke"] and report["scenarios"] == 2 and report["same_outcomes"] is True
    assert report["serial_median_seconds"] > 0 and report["parallel_median_seconds"] > 0
    assert "speed-up (median of rounds)" in printed


def test_an_interrupt_reaches_the_workers_which_clean_up_and_report_their_scenarios(tmp_path: Path) -> None:
    """SIGTERM to `drill run -n 2` alone (as CI cancelling a job sends it): the workers stop, clean up, report."""
    import signal
    import subprocess
    import tempfile
    import time

    from tests.conftest import start_paused_drill

    scenario = '''
  Scenario: {name}
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
'''
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "long.feature").write_text(
        "Feature: long drills\n" + scenario.format(name="one drill held") + scenario.format(name="another drill held"))
    paused = start_paused_drill(tmp_path, "disaster:db", "run", "-n", "2")
    workers = {int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(paused.proc.pid)],
                                              capture_output=True, text=True).stdout.split()}
    assert len(workers) == 2, workers

    def owned() -> list[Path]:  # the folders (servers, private folders) the workers own
        found = []
        for folder in Path(tempfile.gettempdir()).glob("drill-*"):
            try:
                if int((folder / "drill-owner.pid").read_text().strip() or 0) in workers:
                    found.append(folder)
            except (OSError, ValueError):
                continue
        return found

    deadline = time.monotonic() + 180
    while len([f for f in owned() if f.name.startswith("drill-pg-")]) < 2:  # both scenarios are running
        assert time.monotonic() < deadline and paused.proc.poll() is None, paused.output
        time.sleep(0.1)
    out = paused.stop(signal.SIGTERM)
    assert paused.proc.returncode == 130, out
    [results] = list((tmp_path / "reports").glob("*/results.json"))
    data = json.loads(results.read_text())
    assert data["status"] == "interrupted"
    assert sorted((s["name"], s["status"]) for s in data["scenarios"]) == [
        ("another drill held", "interrupted"), ("one drill held", "interrupted")], data["scenarios"]
    assert owned() == []  # every server and folder of the workers is gone: they cleaned up before they ended


def test_a_worker_that_dies_mid_scenario_makes_the_run_an_error_not_a_pass(tmp_path: Path) -> None:
    from tests.conftest import plugin_env, plugin_project

    feature = '''Feature: a worker dies
  Scenario: the worker process dies
    Given the Redis store "cache"
    When the worker process dies

  Scenario: a cache that is fine
    Given the Redis store "other"
    And "other" is seeded with 10 keys
    Then "other" holds 10 keys
'''
    plugin = '''
import os
from pytest_bdd import when


@when("the worker process dies")
def die():
    os._exit(3)
'''
    project = plugin_project(tmp_path, feature, plugin)
    run = run_drill(project, "run", "--quiet", "-n", "2", env=plugin_env(project))
    assert run.code == 1 and run.results is not None, run.output
    assert run.results["status"] == "failed"
    crashed = [s for s in run.results["scenarios"] if s["status"] == "error"]
    assert len(crashed) == 1 and crashed[0]["errors"][0]["type"] == "WorkerCrashed", run.results["scenarios"]
    assert "crashed while running" in crashed[0]["errors"][0]["message"]
    assert run.scenario("a cache that is fine")["status"] == "passed"
