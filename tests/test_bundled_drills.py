"""The repository's own drills (features/) pass on the embedded default: the README's first command.

Every scenario is checked in results.json, not only the exit code: each step passed, the RTO covers the
phases timed inside it and fits in the run, every target is met by the figure it was measured at, every
fingerprint comparison found nothing, every count matched, and the RPO of the writer drill lies where
its feature puts it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, assert_rpo_between, run_drill


def test_bundled_features_are_valid() -> None:
    run = run_drill(REPO, "check")
    assert run.code == 0, run.output
    assert "are valid" in run.stdout


def test_bundled_drills_pass_and_write_results(tmp_path: Path) -> None:
    # The nightly suite needs production's backups (tests/test_nightly.py makes them): left out, as ./dev drill does.
    run = run_drill(REPO, "run", "--tags", "not nightly", "--report-dir", str(tmp_path))
    assert run.code == 0, run.output
    [results] = list(tmp_path.glob("*/results.json"))
    data = json.loads(results.read_text())
    assert data["status"] == "passed" and data["schema_version"] == 1
    bundled = [p for p in (REPO / "features").glob("*.feature") if not p.name.startswith("nightly_")]
    features = sorted(p.name for p in bundled)
    scenario_lines = sum(p.read_text().count("\n  Scenario:") for p in bundled)
    assert len(data["scenarios"]) == scenario_lines, "every bundled scenario ran"
    assert {Path(s["feature"]).name for s in data["scenarios"]} <= set(features)
    names = {s["name"] for s in data["scenarios"]}
    assert "The user database is restored from its latest backup" in names
    assert "The order database is restored from its latest backup" in names
    assert "The user database is restored into a new database while the original stays untouched" in names
    assert "The user database loses only what was written after its backup" in names
    run_seconds = run.ended_at - run.started_at
    for scenario in data["scenarios"]:
        name = scenario["name"]
        assert scenario["status"] == "passed" and scenario["errors"] == [], name
        assert scenario["steps"] and {s["status"] for s in scenario["steps"]} == {"passed"}, name
        # A drill of a failed restore (rolled back) recovers nothing, so it has no recovery time or point.
        failed_on_purpose = "planted_failures" in scenario["evidence"]
        rto = scenario["rto_seconds"]
        if failed_on_purpose:
            assert rto is None, name
        else:
            assert rto is not None and scenario["rpo_seconds"] is not None, name
            # Phases nest (a restore into a new target provisions it), so the RTO holds the longest of them.
            longest = max((p["seconds"] for p in scenario["phases"] if p["in_rto"] and p["name"] != "rollback"),
                          default=0.0)
            assert 0 < rto <= run_seconds, name
            assert longest <= rto + 0.05, (name, longest, rto)
        for target in scenario["targets"]:
            measured = {"rto": rto, "rpo": scenario["rpo_seconds"]}[target["metric"]]
            assert target["met"] is True and target["measured_seconds"] == measured, (name, target)
            assert measured <= target["target_seconds"], (name, target)
        for store, prints in scenario["evidence"]["fingerprints"].items():
            assert prints["differences"] == [], (name, store)
            assert prints["before"]["parts"] == prints["after"]["parts"], (name, store)
            assert prints["before"]["total"] > 0 or "rollback" in store, (name, store)
        for where, count in scenario["evidence"].get("counts", {}).items():
            assert count["expected"] == count["actual"], (name, where)
    writer = next(s for s in data["scenarios"] if s["name"].startswith("The user database loses"))
    # features/postgres_rpo.feature: writes every 0.5 s, a backup, 3 s, the disaster.
    assert writer["rpo_method"] == "markers"
    assert_rpo_between(run, writer, 3.0, 0.5, backup_in_gap="userdb")
    markers = writer["evidence"]["markers"]["userdb"]
    assert markers["lost"] >= int(3.0 / 0.5) - 1 and markers["newest_surviving_seq"] < markers["last_seq"]
