"""The repository's own drills (features/) pass on the embedded default: the README's first command."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, run_drill


def test_bundled_features_are_valid() -> None:
    run = run_drill(REPO, "check")
    assert run.code == 0, run.output
    assert "are valid" in run.stdout


def test_bundled_drills_pass_and_write_results(tmp_path: Path) -> None:
    # The nightly suite needs production's backups (tests/test_nightly.py makes them): left out, as ./dev drill does.
    run = run_drill(REPO, "run", "--tags", "not nightly", "--report-dir", str(tmp_path))
    assert run.code == 0, run.output
    [results] = list(tmp_path.glob("*/results.json"))
    import json

    data = json.loads(results.read_text())
    assert data["status"] == "passed" and data["schema_version"] == 1
    names = {s["name"] for s in data["scenarios"]}
    assert "The user database is restored from its latest backup" in names
    assert "The order database is restored from its latest backup" in names
    assert "The user database is restored into a new database while the original stays untouched" in names
    assert "The user database loses only what was written after its backup" in names
    for scenario in data["scenarios"]:
        # A drill of a failed restore (rolled back) recovers nothing, so it has no recovery point.
        failed_on_purpose = "planted_failures" in scenario["evidence"]
        assert scenario["rto_seconds"] is not None and (scenario["rpo_seconds"] is not None or failed_on_purpose)
        assert all(t["met"] for t in scenario["targets"])
    writer = next(s for s in data["scenarios"] if s["name"].startswith("The user database loses"))
    assert writer["rpo_method"] == "markers" and writer["rpo_seconds"] >= 3.0
