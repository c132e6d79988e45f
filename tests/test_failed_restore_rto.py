"""A failed restore has no recovery time: its RTO reads "not measured" and its RTO target reads missed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_drill


def test_a_failed_restore_has_no_rto_and_its_target_reads_missed(tmp_path: Path) -> None:
    """The restore fails for real (its time limit stops pg_restore); the RTO reads "not measured", never the time
    up to the failure, and the RTO target reads as missed in the results and every report."""
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "failed.feature").write_text('''Feature: failed restore
  @rto:30m
  Scenario: the restore fails
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 20000 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
''')
    (tmp_path / "drill.toml").write_text('[stores.userdb]\nkind = "postgres"\nrestore_timeout = "20 milliseconds"\n')
    run = run_drill(tmp_path, "run")
    assert run.code == 1, run.output
    scenario = run.scenario("the restore fails")
    assert scenario["status"] == "failed"
    assert "did not finish within its time limit" in scenario["errors"][0]["message"]
    assert [p["status"] for p in scenario["phases"] if p["name"] == "restore"] == ["failed"]
    assert scenario["rto_seconds"] is None
    [target] = [t for t in scenario["targets"] if t["metric"] == "rto"]
    assert target["measured_seconds"] is None and target["met"] is False
    assert target["unmeasured_reason"] == "the restore failed, so there was no recovery to time"
    report_dir = next((tmp_path / "reports").glob("*/results.json")).parent
    summary = (report_dir / "summary.md").read_text()
    assert "not measured / 30m MISSED" in summary, summary
    html = (report_dir / "report.html").read_text()
    assert "not measured (the restore failed, so there was no recovery to time)" in html
    assert '<span class="missed">MISSED</span>' in html
    junit = (report_dir / "junit.xml").read_text()
    assert 'name="drill.target.rto[@rto:30m].met" value="false"' in junit
    assert "not measured / 30m MISSED" in run.output  # the terminal summary
