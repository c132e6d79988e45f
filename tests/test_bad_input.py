"""Malformed features and configuration: an error with file and line, and nothing is run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_drill

GOOD = '''Feature: ok
  Scenario: fine
    Given the PostgreSQL store "db"
    And "db" is seeded with 10 rows
'''


def test_malformed_feature_names_file_and_line(drill_dir: Path, write_feature: Any) -> None:
    write_feature("broken.feature", 'Feature: broken\n  Scenario: x\n    Given the PostgreSQL store "db"\n'
                                    '    Wehn "db" is lost\n')
    for command in ("check", "run"):
        run = run_drill(drill_dir, command)
        assert run.code == 2, run.output
        assert "features/broken.feature:4:" in run.stderr
        assert 'Wehn "db" is lost' in run.stderr
        assert run.results is None  # nothing ran, nothing provisioned


def test_undefined_step_and_bad_duration_are_found_by_check(drill_dir: Path, write_feature: Any) -> None:
    write_feature("typo.feature", '''Feature: typos
  @rto:soon
  Scenario: x
    Given the PostgreSQL store "db"
    When "db" is exploded
    Then the recovery time is within 3 fortnights
    And "other" holds 3 rows
''')
    run = run_drill(drill_dir, "check")
    assert run.code == 2
    assert "typo.feature:3: @rto:soon: cannot read duration 'soon'" in run.stderr
    assert 'typo.feature:5: undefined step: When "db" is exploded' in run.stderr
    assert "typo.feature:6: unknown unit 'fortnights'" in run.stderr
    assert "typo.feature:7: store 'other' is used before it is declared" in run.stderr


def test_unknown_tier_is_reported(drill_dir: Path, write_feature: Any) -> None:
    write_feature("tier.feature", GOOD.replace("  Scenario", "  @tier:platinum\n  Scenario"))
    run = run_drill(drill_dir, "check")
    assert run.code == 2
    assert "unknown tier in @tier:platinum; tiers: critical, important, standard" in run.stderr


def test_malformed_toml_names_file_and_line(drill_dir: Path, write_feature: Any) -> None:
    write_feature("ok.feature", GOOD)
    (drill_dir / "drill.toml").write_text('[stores.db]\nkind = "postgres"\nprovision = local\n')
    run = run_drill(drill_dir, "run")
    assert run.code == 2
    assert "drill.toml:3:" in run.stderr and "not valid TOML" in run.stderr
    assert run.results is None


def test_invalid_setting_names_file_line_key_and_allowed_values(drill_dir: Path, write_feature: Any) -> None:
    write_feature("ok.feature", GOOD)
    (drill_dir / "drill.toml").write_text('[drill]\nbackup_dir = "b"\n\n[stores.db]\nkind = "postgres"\n'
                                          'provision = "somewhere"\n')
    run = run_drill(drill_dir, "check")
    assert run.code == 2
    assert ("drill.toml:6: [stores.db.provision] 'somewhere' is not allowed; one of: local, container, live"
            in run.stderr)


def test_store_kind_conflict_between_feature_and_config(drill_dir: Path, write_feature: Any) -> None:
    write_feature("ok.feature", GOOD)
    (drill_dir / "drill.toml").write_text('[stores.db]\nkind = "redis"\n')
    run = run_drill(drill_dir, "check")
    assert run.code == 2
    assert "ok.feature:3: the feature uses store 'db' as postgres but it is configured as kind 'redis'" in run.stderr


def test_list_shows_scenarios_tags_and_targets(drill_dir: Path, write_feature: Any) -> None:
    write_feature("ok.feature", GOOD.replace("  Scenario", "  @tier:critical @rpo:5m\n  Scenario"))
    run = run_drill(drill_dir, "list")
    assert run.code == 0, run.output
    assert "features/ok.feature:3  fine" in run.stdout
    assert "@rpo:5m @tier:critical" in run.stdout
    # Durations as people write them (issue 17): `30m`, not `1800s`.
    assert "RTO 30m (@tier:critical)" in run.stdout and "RPO 5m (@rpo:5m)" in run.stdout
    assert "1800s" not in run.stdout and "300s" not in run.stdout


def test_tags_select_scenarios(drill_dir: Path, write_feature: Any) -> None:
    write_feature("two.feature", '''Feature: two
  @tier:critical
  Scenario: critical one
    Given the PostgreSQL store "db"

  @tier:standard
  Scenario: standard one
    Given the PostgreSQL store "db"
''')
    run = run_drill(drill_dir, "run", "--tags", "tier:critical")
    assert run.code == 1, run.output  # it ran, but an @tier target with no restore cannot be met
    assert [s["name"] for s in run.results["scenarios"]] == ["critical one"]
    assert "could not be measured" in run.results["scenarios"][0]["errors"][0]["message"]
    none = run_drill(drill_dir, "run", "--tags", "tier:platinum")
    assert none.code == 2 and "no scenario matched --tags 'tier:platinum'" in none.stderr


def test_step_plugins_named_in_drill_toml_are_known_to_check_and_run(drill_dir: Path, write_feature: Any) -> None:
    (drill_dir / "drill.toml").write_text('[drill]\nplugins = ["house_steps"]\n')
    (drill_dir / "house_steps.py").write_text(
        "from pytest_bdd import parsers, then\n\n"
        "@then(parsers.parse('\"{store}\" has a table named \"{table}\"'))\n"
        "def has_table(drill, store, table):\n"
        "    assert drill.store(store).count(table) >= 0\n")
    write_feature("house.feature", GOOD + '    Then "db" has a table named "users"\n'
                                          '    And "db" has a table named "nope"\n')
    assert run_drill(drill_dir, "check").code == 0
    run = run_drill(drill_dir, "run")
    assert run.code == 1, run.output
    [scenario] = run.results["scenarios"]
    assert [s["status"] for s in scenario["steps"]][-2:] == ["passed", "failed"]
    assert "'db' has no table 'nope'" in scenario["errors"][0]["message"]
