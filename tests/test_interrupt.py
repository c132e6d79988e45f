"""Ctrl-C during a drill: the throwaway cluster is removed and results are written, marked interrupted."""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

from drill.provision.processes import OWNER_FILE
from tests.conftest import LONG_POSTGRES_FEATURE, port_open, run_drill, start_waiting_drill


def _clusters_of(pid: int) -> list[Path]:
    found = []
    for candidate in Path(tempfile.gettempdir()).glob("drill-pg-*"):
        owner = candidate / "drill-owner.pid"
        if owner.is_file() and owner.read_text().strip() == str(pid):
            found.append(candidate)
    return found


def test_ctrl_c_removes_the_cluster_and_writes_interrupted_results(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "long.feature").write_text(LONG_POSTGRES_FEATURE)
    # Readiness: the drill itself says it is waiting (the cluster is up and being written to).
    drill = start_waiting_drill(tmp_path, "run", timeout=120)
    clusters = _clusters_of(drill.proc.pid)
    assert len(clusters) == 1, "the drill should have one throwaway cluster while it runs"
    port = int((clusters[0] / "data" / "postmaster.pid").read_text().splitlines()[3])
    assert port_open(port)

    output = drill.stop(signal.SIGINT, timeout=60)

    assert drill.proc.returncode == 130, output
    assert not clusters[0].exists(), "the throwaway cluster must be removed"
    assert not port_open(port), "the PostgreSQL server must be stopped"
    [results_file] = list((tmp_path / "reports").glob("*/results.json"))
    results = json.loads(results_file.read_text())
    assert results["status"] == "interrupted"
    [scenario] = results["scenarios"]
    assert scenario["status"] == "interrupted"
    statuses = {s["text"]: s["status"] for s in scenario["steps"]}
    assert statuses["10 minutes pass"] == "interrupted"
    assert statuses['"db" is lost'] == "not_run"
    assert scenario["evidence"]["markers"]["db"]["written"] > 0  # what ran is still reported


def test_the_generated_test_folder_of_a_killed_drill_is_swept_by_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "long.feature").write_text(LONG_POSTGRES_FEATURE)
    drill = start_waiting_drill(tmp_path, "run", timeout=120)
    pid = drill.proc.pid
    drill.kill()  # SIGKILL: its own clean-up cannot run
    tmp = Path(tempfile.gettempdir())
    left = [d for d in tmp.glob("drill-run-*") if (d / OWNER_FILE).is_file()
            and (d / OWNER_FILE).read_text().strip() == str(pid)]
    assert len(left) == 1 and (left[0] / "test_drills.py").is_file(), left
    (tmp_path / "features" / "long.feature").unlink()
    (tmp_path / "features" / "quick.feature").write_text(
        'Feature: quick\n  Scenario: quick\n    Given the Redis store "cache"\n    And "cache" is seeded with 10 keys\n'
        '    Then "cache" holds 10 keys\n')
    run = run_drill(tmp_path, "run")
    assert run.code == 0, run.output
    assert not left[0].exists(), "the killed drill's generated test folder is still there"
