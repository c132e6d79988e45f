"""RPO measured from surviving markers agrees with an injected gap; missed targets fail drills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_drill

INTERVAL = 0.2

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
    # The truth: nothing was written between the writer's stop and the disaster.
    gap = markers["disaster_at"] - markers["stopped_at"]
    assert gap >= 2.0
    assert gap <= scenario["rpo_seconds"] <= gap + INTERVAL
    assert markers["newest_surviving_seq"] == markers["last_seq"]  # every marker survived: backup after stop


def test_rpo_counts_writes_lost_after_the_backup(run: Any) -> None:
    scenario = run.scenario("writes go on for three seconds after the backup")
    assert scenario["status"] == "passed", run.output
    markers = scenario["evidence"]["markers"]["db"]
    backup = scenario["evidence"]["backups"][0]
    truth = markers["disaster_at"] - backup["consistent_at"]  # everything after the snapshot was lost
    assert truth >= 3.0
    assert truth - INTERVAL <= scenario["rpo_seconds"] <= truth + INTERVAL
    assert markers["lost"] >= int(3.0 / INTERVAL) - 1
    assert markers["newest_surviving_seq"] < markers["last_seq"]


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
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "recovery time (RTO)" in message and "exceeds the target 1ms" in message
    # The content was fine: only the target failed.
    assert scenario["evidence"]["fingerprints"]["db"]["differences"] == []


def test_missed_targets_make_the_exit_code_non_zero(run: Any) -> None:
    assert run.code == 1
    assert run.results["status"] == "failed"
    assert "MISSED" in run.stdout
