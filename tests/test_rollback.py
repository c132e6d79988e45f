"""Rollback: real restore failures (corrupt backup, killed server, full disk, timeout) are rolled back, and
the rollback is verified against the store's fingerprint from before the restore. A drill killed in the
middle of a restore leaves a journal; the next run repairs the store (live) or reports it (throwaway).

Every store here is a real server: throwaway PostgreSQL clusters, and a Redis server the test starts and
hands to drill as a live store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests import oracles
from tests.conftest import REPO, DrillRun, newest_results, run_drill, start_paused_drill
from tests.live_servers import LiveRedis

BACKGROUND = '''Feature: rollback
  Background:
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 30000 rows
    And a backup of "userdb" is taken
    And SQL is run on "userdb":
      """
      DELETE FROM orders WHERE id % 7 = 0;
      """
'''

FAULTS = {
    "the backup is corrupt": "is corrupt: sha256",
    "the server is killed": "pg_restore failed",
    "the disk is full": "No space left on device",
    "it times out": "did not finish within its time limit",
}


def _project(root: Path, feature: str, toml: str | None = None) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "drill.feature").write_text(feature, encoding="utf-8")
    if toml is not None:
        (root / "drill.toml").write_text(toml, encoding="utf-8")
    return root


def _fault_scenario(cause: str) -> str:
    return f'''
  Scenario: {cause}
    Given the rollback policy is on-failure
    When the restore of "userdb" fails because {cause}
    Then "userdb" is rolled back to its state before the restore
'''


FULL_DISK = "the disk is full"  # run on its own, held while the small disk is mounted (below)


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    scenarios = "".join(_fault_scenario(cause) for cause in FAULTS if cause != FULL_DISK)
    root = _project(tmp_path_factory.mktemp("faults"), BACKGROUND + scenarios)
    return run_drill(root, "run", timeout=600)


@pytest.mark.parametrize("cause", [c for c in FAULTS if c != FULL_DISK])
def test_each_real_failure_is_rolled_back_to_the_fingerprint_from_before(fault_run: Any, cause: str) -> None:
    _assert_rolled_back(fault_run, cause)


def _assert_rolled_back(fault_run: Any, cause: str) -> None:
    scenario = fault_run.scenario(cause)
    assert scenario["status"] == "passed", fault_run.output
    planted = scenario["evidence"]["planted_failures"]["userdb"]
    assert FAULTS[cause] in planted["error"], planted
    assert planted["rolled_back"] is True
    rolled = scenario["evidence"]["rollback"]["userdb"]
    assert rolled["verified"] is True and rolled["differences"] == [] and rolled["absent"] is False
    # The state rolled back to is the one after the DELETE, not the backup's: the rollback is not a restore.
    check = scenario["evidence"]["fingerprints"]["userdb (rollback)"]
    assert check["differences"] == [] and check["before"]["parts"] == check["after"]["parts"]
    backup_total = scenario["evidence"]["backups"][0]
    assert check["after"]["total"] < 30000, backup_total
    assert [p["name"] for p in scenario["phases"]][-3:] == ["restore", "rollback", "verify"]


def _mounts_under(folder: Path) -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount below `folder`, as the kernel lists them."""
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        _, point, fstype, *_ = line.split()
        if point.startswith(f"{folder}/"):
            found.append((point, fstype))
    return found


def test_the_full_disk_is_a_real_small_filesystem_rolled_back_and_gone(tmp_path: Path) -> None:
    # drill's temporary folders go to a TMPDIR of this test's own (reachable by the server's account), so no
    # other run on the machine can be mistaken for this one.
    private = Path(tempfile.mkdtemp(prefix="drilltest-tmp-"))
    private.chmod(0o755)
    try:
        root = _project(tmp_path, BACKGROUND + _fault_scenario(FULL_DISK))
        # Held just before the restore, the small disk is mounted: a tmpfs with little more than an empty database.
        paused = start_paused_drill(root, "restore:userdb", "run", env={"TMPDIR": str(private)}, timeout=600)
        [(point, fstype)] = _mounts_under(private)
        assert fstype == "tmpfs" and Path(point).name.startswith("drill-small-disk-"), point
        size = os.statvfs(point)
        assert size.f_blocks * size.f_frsize < 64 * 1024 * 1024, "not a small disk"
        output = paused.finish(timeout=600)
        run = DrillRun(paused.proc.returncode, output, "", newest_results(root))
        _assert_rolled_back(run, FULL_DISK)
        assert _mounts_under(private) == []  # unmounted ...
        assert not list(private.glob("drill-small-disk-*"))  # ... and its folder removed
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_never_policy_leaves_the_failed_restore_and_the_check_says_so(tmp_path: Path) -> None:
    feature = BACKGROUND.replace("30000", "2000") + '''
  Scenario: never
    Given the rollback policy is never
    When the restore of "userdb" fails because the server is killed
    Then "userdb" is rolled back to its state before the restore
'''
    run = run_drill(_project(tmp_path, feature), "run")
    scenario = run.scenario("never")
    assert scenario["status"] == "failed"
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "'userdb' was not rolled back: the rollback policy is never" in messages
    assert "rollback" not in [p["name"] for p in scenario["phases"]]


def test_the_rollback_check_catches_a_store_that_differs_from_before(tmp_path: Path) -> None:
    feature = BACKGROUND.replace("30000", "2000") + '''
  Scenario: changed after the rollback
    Given the rollback policy is on-failure
    When the restore of "userdb" fails because the backup is corrupt
    And SQL is run on "userdb":
      """
      UPDATE users SET email = 'planted@example.org' WHERE id = 3;
      """
    Then "userdb" is rolled back to its state before the restore
'''
    run = run_drill(_project(tmp_path, feature), "run")
    scenario = run.scenario("changed after the rollback")
    assert scenario["status"] == "failed"
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "'userdb' does not match its state before the restore" in messages
    assert "public.users" in messages


def test_policy_always_rolls_a_successful_restore_back(tmp_path: Path) -> None:
    feature = BACKGROUND.replace("30000", "2000") + '''
  Scenario: always, by hand
    Given the rollback policy is always
    When "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
    When "userdb" is rolled back
    Then "userdb" is rolled back to its state before the restore

  Scenario: always, at the end
    Given the rollback policy is always
    When "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
'''
    run = run_drill(_project(tmp_path, feature), "run")
    assert run.code == 0, run.output
    by_hand = run.scenario("always, by hand")
    assert by_hand["evidence"]["rollback"]["userdb"]["verified"] is True
    at_end = run.scenario("always, at the end")
    assert at_end["evidence"]["rollback"]["userdb"]["verified"] is True
    assert "rollback" in [p["name"] for p in at_end["phases"]]
    assert not (tmp_path / "backups" / ".drill-rollback" / "userdb").exists()


def test_a_planted_fault_that_cannot_apply_is_refused_clearly(tmp_path: Path) -> None:
    feature = '''Feature: f
  Scenario: redis killed
    Given the Redis store "cache"
    And "cache" is seeded with 10 keys
    And a backup of "cache" is taken
    When the restore of "cache" fails because the server is killed
'''
    run = run_drill(_project(tmp_path, feature), "run")
    messages = " ".join(e["message"] for e in run.scenario("redis killed")["errors"])
    assert "planted into local PostgreSQL stores only" in messages, run.output


def test_a_restore_timeout_from_drill_toml_stops_a_slow_restore(tmp_path: Path) -> None:
    feature = BACKGROUND + '''
  Scenario: too slow
    Given the rollback policy is on-failure
    When "userdb" is restored from its latest backup
'''
    toml = '[stores.userdb]\nkind = "postgres"\nrestore_timeout = "50 milliseconds"\n'
    run = run_drill(_project(tmp_path, feature, toml), "run")
    scenario = run.scenario("too slow")
    assert scenario["status"] == "failed"
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "did not finish within its time limit of 0.05 seconds" in messages
    assert "was rolled back to its state before the restore" in messages
    assert scenario["evidence"]["rollback"]["userdb"]["verified"] is True


# -- a drill killed in the middle of a restore ----------------------------------------------------------

KILLED = '''Feature: killed
  Scenario: restore in progress
    Given the Redis store "cache"
    And "cache" is seeded with 60000 keys
    And a backup of "cache" is taken
    And the rollback policy is on-failure
    When "cache" is lost
    And "cache" is restored from its latest backup
'''

NEXT_RUN = '''Feature: next
  Scenario: next run
    Given the Redis store "cache"
    Then "cache" holds 0 keys
'''


def test_a_live_store_left_half_restored_by_a_killed_drill_is_repaired_by_the_next_run(tmp_path: Path) -> None:
    with LiveRedis() as live:
        env = {"CACHE_URL": live.url(0)}
        toml = '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\ndestructive = true\n'
        _project(tmp_path, KILLED, toml)
        journal = tmp_path / "backups" / ".drill-rollback" / "cache" / "journal.json"
        client: Any = live.client(0)
        # drill holds still once the replay's first batch is in, the rest not: killed there, exactly.
        paused = start_paused_drill(tmp_path, "restore-started:cache", "run", env=env, timeout=300)
        half = int(client.dbsize())
        paused.kill()
        assert 0 < half < 60000, f"the store is not half-restored ({half} keys); output:\n{paused.output}"
        assert journal.exists()
        assert int(client.dbsize()) == half  # nobody finished the restore after the kill
        recorded = json.loads(journal.read_text())
        assert recorded["state"] == "restoring" and recorded["absent"] is False

        (tmp_path / "features" / "drill.feature").write_text(NEXT_RUN, encoding="utf-8")
        run = run_drill(tmp_path, "run", env=env)
        assert run.code == 0, run.output
        # The live store's safety net (drill.safety_net) finishes the job before the run's scenarios: the store
        # goes back to its state before the drill (empty: the drill seeded it itself), and both journals go.
        assert run.results is not None
        [repaired] = run.results["repairs"]
        assert repaired["outcome"] == "put back" and repaired["verified"] is True and repaired["ok"], repaired
        assert f"pid {paused.proc.pid}" in repaired["interrupted"]
        assert "live store cache left by a killed drill: repaired (put back)" in run.output
        # Its state before the drill, read by the test's own client: empty (the drill seeded it itself).
        assert oracles.redis_state(live.client) == {}
        assert not journal.parent.exists()
        assert not (tmp_path / "backups" / ".drill-safety" / "cache").exists()
        client.close()


def test_a_throwaway_store_left_half_restored_is_reported_by_the_next_run(tmp_path: Path) -> None:
    feature = BACKGROUND + '''
  Scenario: restore in progress
    Given the rollback policy is on-failure
    When "userdb" is restored from its latest backup
'''
    _project(tmp_path, feature)
    journal = tmp_path / "backups" / ".drill-rollback" / "userdb" / "journal.json"
    # Held once the restore's target database exists and before any data is loaded, then killed there.
    paused = start_paused_drill(tmp_path, "restore-started:userdb", "run", timeout=300)
    assert journal.exists(), f"no journal while restoring; output:\n{paused.output}"
    paused.kill()
    assert journal.exists()

    (tmp_path / "features" / "drill.feature").write_text(
        'Feature: n\n  Scenario: next run\n    Given the PostgreSQL store "userdb"\n', encoding="utf-8")
    run = run_drill(tmp_path, "run")
    assert run.code == 0, run.output
    reported = run.scenario("next run")["evidence"]["interrupted_restores"]["userdb"]
    assert reported["outcome"] == "reported" and f"pid {paused.proc.pid}" in reported["interrupted"]
    assert "interrupted restore reported" in run.output
    assert not journal.exists()


def test_a_journal_of_a_running_drill_is_not_touched(tmp_path: Path) -> None:
    journal = tmp_path / "backups" / ".drill-rollback" / "userdb" / "journal.json"
    journal.parent.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        import socket

        journal.write_text(json.dumps({"state": "restoring", "pid": sleeper.pid, "host": socket.gethostname(),
                                       "taken_at": time.time(), "absent": True}))
        _project(tmp_path, 'Feature: n\n  Scenario: s\n    Given the PostgreSQL store "userdb"\n')
        run = run_drill(tmp_path, "run")
        messages = " ".join(e["message"] for e in run.scenario("s")["errors"])
        assert f"another drill (pid {sleeper.pid}) is restoring 'userdb' right now" in messages
        assert journal.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_bundled_rollback_feature_passes(tmp_path: Path) -> None:
    run = run_drill(tmp_path, "run", str(REPO / "features" / "rollback.feature"))
    assert run.code == 0, run.output


def test_redis_and_mongodb_roll_back_through_their_own_backup_and_restore(tmp_path: Path) -> None:
    feature = '''Feature: other kinds
  Scenario: redis
    Given the Redis store "cache"
    And "cache" is seeded with 300 keys
    And a backup of "cache" is taken
    And the rollback policy is on-failure
    When "cache" is lost
    And "cache" is seeded with 50 keys
    And the restore of "cache" fails because the backup is corrupt
    Then "cache" is rolled back to its state before the restore
    And "cache" holds 50 keys

  Scenario: mongodb
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 200 documents
    And a backup of "notifydb" is taken
    And the rollback policy is on-failure
    When the restore of "notifydb" fails
    Then "notifydb" is rolled back to its state before the restore
    And "notifydb" holds 200 documents
'''
    run = run_drill(_project(tmp_path, feature), "run")
    assert run.code == 0, run.output
    for name, store in (("redis", "cache"), ("mongodb", "notifydb")):
        scenario = run.scenario(name)
        rolled = scenario["evidence"]["rollback"][store]
        assert rolled["verified"] is True and rolled["safety_copy"]["sha256"], rolled
        assert "corrupt" in scenario["evidence"]["planted_failures"][store]["error"]

