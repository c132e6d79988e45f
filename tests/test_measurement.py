"""RPO measured from surviving markers agrees with an injected gap; missed targets fail drills.

The bounds come from what each scenario does (tests/conftest.py: assert_rpo_between): writes every
INTERVAL, a known wait between the recovery point and the disaster, so the RPO lies between the wait
and the wait plus one interval plus the measured step slack. A disaster recorded late, or a recovery
point taken from the wrong marker, falls outside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_rpo_between, phase_seconds, run_drill

INTERVAL = 0.2
WAIT = 3  # seconds waited inside the recovery: the RTO cannot be shorter

FEATURE = f'''
Feature: measurement

  Scenario: writer stopped two seconds before the disaster
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    When writes to "db" stop
    And 2 seconds pass
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows

  Scenario: writes go on for three seconds after the backup
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    And a backup of "db" is taken
    When 3 seconds pass
    And "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows

  Scenario: an RTO target given by a step is missed
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup
    And the recovery time is within 1 millisecond

  @rto:1ms
  Scenario: an RTO target given by a tag is missed
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup

  @rpo:1s
  Scenario: an RPO target is missed
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    And a backup of "db" is taken
    When 2 seconds pass
    And "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows

  Scenario: an RPO target is met
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows
    And the data loss is at most 5 seconds

  Scenario: a wait inside the recovery
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And a backup of "db" is taken
    When "db" is lost
    And {WAIT} seconds pass
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("measure")
    (root / "features").mkdir()
    (root / "features" / "measure.feature").write_text(FEATURE, encoding="utf-8")
    return run_drill(root, "run")


def test_rpo_agrees_with_an_injected_gap_within_one_marker_interval(run: Any) -> None:
    scenario = run.scenario("writer stopped two seconds before the disaster")
    assert scenario["status"] == "passed", run.output
    markers = scenario["evidence"]["markers"]["db"]
    assert scenario["rpo_method"] == "markers"
    # The truth: nothing was written during the 2 s wait, nor during the backup after the writer stopped.
    assert_rpo_between(run, scenario, 2.0, INTERVAL, backup_in_gap="db")
    assert markers["newest_surviving_seq"] == markers["last_seq"]  # every marker survived: backup after stop
    # About 1 s of writing at 5 per second: the writer's own count, not a number drill could make up.
    assert int(1.0 / INTERVAL) - 1 <= markers["written"] <= int(1.0 / INTERVAL) + 3, markers


def test_rpo_counts_writes_lost_after_the_backup(run: Any) -> None:
    scenario = run.scenario("writes go on for three seconds after the backup")
    assert scenario["status"] == "passed", run.output
    markers = scenario["evidence"]["markers"]["db"]
    # Everything written after the backup's snapshot (taken at the start of the backup step) was lost.
    assert_rpo_between(run, scenario, 3.0, INTERVAL, backup_in_gap="db")
    assert markers["lost"] >= int(3.0 / INTERVAL) - 1
    assert markers["newest_surviving_seq"] < markers["last_seq"]


def test_a_missed_rpo_target_fails_naming_the_rpo(run: Any) -> None:
    scenario = run.scenario("an RPO target is missed")
    assert scenario["status"] == "failed", run.output
    rpo = assert_rpo_between(run, scenario, 2.0, INTERVAL, backup_in_gap="db")
    [target] = scenario["targets"]
    assert (target["metric"], target["source"], target["target_seconds"], target["met"]) == ("rpo", "@rpo:1s", 1.0,
                                                                                            False)
    assert target["measured_seconds"] == rpo
    message = " ".join(e["message"] for e in scenario["errors"])
    assert f"data loss (RPO) {rpo:.1f}s exceeds the target 1.0s (@rpo:1s)" in message, message
    # Only the target failed: every step passed.
    assert {s["status"] for s in scenario["steps"]} == {"passed"}


def test_an_rpo_target_that_is_met_passes(run: Any) -> None:
    scenario = run.scenario("an RPO target is met")
    assert scenario["status"] == "passed", run.output
    rpo = assert_rpo_between(run, scenario, 0.0, INTERVAL, backup_in_gap="db")
    [target] = scenario["targets"]
    assert target["met"] is True and target["measured_seconds"] == rpo and target["target_seconds"] == 5.0


def test_the_rto_holds_a_wait_inside_the_recovery(run: Any) -> None:
    scenario = run.scenario("a wait inside the recovery")
    assert scenario["status"] == "passed", run.output
    rto = scenario["rto_seconds"]
    # From the disaster to the verified restore: the wait, the restore and the verification, and little else.
    work = sum(phase_seconds(scenario, name, "db") for name in ("disaster", "restore", "verify"))
    assert WAIT + work <= rto + 0.01, (rto, work)
    assert rto <= WAIT + work + 1.0, (rto, work)
    assert rto <= run.ended_at - run.started_at


STEP_LINE = FEATURE.splitlines().index("    And the recovery time is within 1 millisecond") + 1


@pytest.mark.parametrize("name, source", [("an RTO target given by a step is missed", f"step at line {STEP_LINE}"),
                                          ("an RTO target given by a tag is missed", "@rto:1ms")])
def test_a_missed_rto_target_fails_the_scenario(run: Any, name: str, source: str) -> None:
    scenario = run.scenario(name)
    assert scenario["status"] == "failed"
    [target] = [t for t in scenario["targets"] if t["metric"] == "rto"]
    assert target["source"] == source
    assert target["met"] is False
    assert target["measured_seconds"] > target["target_seconds"]
    assert target["measured_seconds"] == scenario["rto_seconds"]
    # The RTO holds at least the restore and its verification, as their phases were timed.
    assert scenario["rto_seconds"] >= sum(phase_seconds(scenario, n, "db") for n in ("restore", "verify"))
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "recovery time (RTO)" in message and "exceeds the target 1ms" in message
    # The content was fine: only the target failed.
    assert scenario["evidence"]["fingerprints"]["db"]["differences"] == []


def test_missed_targets_make_the_exit_code_non_zero(run: Any) -> None:
    assert run.code == 1
    assert run.results["status"] == "failed"
    assert "MISSED" in run.stdout
    statuses = {s["name"]: s["status"] for s in run.results["scenarios"]}
    assert statuses == {"writer stopped two seconds before the disaster": "passed",
                        "writes go on for three seconds after the backup": "passed",
                        "an RTO target given by a step is missed": "failed",
                        "an RTO target given by a tag is missed": "failed",
                        "an RPO target is missed": "failed", "an RPO target is met": "passed",
                        "a wait inside the recovery": "passed"}


def test_recording_writes_returns_with_the_first_marker_in_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Given writes to "X" are recorded` is done only once a marker is in the store: a backup taken in the next
    step holds it, whatever the scheduler does (a live Redis of the test's own, read with redis-py)."""
    from drill.cleanup import CleanupStack
    from drill.config import StoreConfig
    from drill.markers import MarkerWriter
    from drill.provision.factory import provision
    from tests.live_servers import LiveRedis

    with LiveRedis() as server:
        monkeypatch.setenv("CACHE_URL", server.url(0))
        cleanup = CleanupStack()
        store = provision(StoreConfig(name="cache", kind="redis", provision="live", url_env="CACHE_URL",
                                      allow_writes=True), cleanup)
        try:
            for _ in range(5):
                client: Any = server.client(0)
                client.flushall()
                writer = MarkerWriter(store.markers(), 10.0, "cache")  # the second marker is 10 s away
                writer.start()
                assert client.dbsize() == 1 and len(writer.written) == 1  # the first marker, read by redis-py
                writer.stop()
        finally:
            assert cleanup.run() == []
