"""Pause points (drill/pause.py): a drill waits at the named point until the test releases it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import start_paused_drill

FEATURE = '''Feature: paused
  Scenario: a drill held after its disaster
    Given the PostgreSQL store "db"
    And "db" is seeded with 50 rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup
'''


def test_a_drill_waits_at_its_pause_point_until_released(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "paused.feature").write_text(FEATURE)
    drill = start_paused_drill(tmp_path, "disaster:db", "run")
    assert drill.proc.poll() is None  # held: the restore has not run
    output = drill.finish()
    assert drill.proc.returncode == 0, output
    results = json.loads(next((tmp_path / "reports").glob("*/results.json")).read_text())
    assert [s["status"] for s in results["scenarios"]] == ["passed"]
    phases = [p["name"] for p in results["scenarios"][0]["phases"]]
    assert phases.index("disaster") < phases.index("restore")
