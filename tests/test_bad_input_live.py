"""Bad input around live stores and run options, caught before anything runs: exit 2, file:line, one line.

Each case plants the mistake and checks that drill refuses it by the exit code and message, and that
nothing ran (no results.json, no store provisioned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drill.config import load_config
from drill.errors import ConfigError
from tests.conftest import run_drill

LIVE_FEATURE = '''Feature: live
  Scenario: uses the live store
    Given the PostgreSQL store "prod"
    Then "prod" holds 0 rows
'''
LIVE_TOML = '[stores.prod]\nkind = "postgres"\nprovision = "live"\nurl_env = "PROD_URL"\n'


@pytest.mark.parametrize(("value", "shown"), [("inf", "inf"), ("nan", "nan"), ("-5", "-5"), ("0", "0"),
                                              ('"0 seconds"', "'0 seconds'")])
@pytest.mark.parametrize("key", ["tiers.critical.rto", "stores.db.restore_timeout", "stores.db.rto"])
def test_durations_must_be_finite_and_above_zero(tmp_path: Path, key: str, value: str, shown: str) -> None:
    table, _, name = key.rpartition(".")
    kind = 'kind = "postgres"\n' if table.startswith("stores") else ""
    path = tmp_path / "drill.toml"
    path.write_text(f"# a comment\n[{table}]\n{kind}{name} = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = 4 if kind else 3
    assert str(caught.value).startswith(f"{path}:{line}: [{key}] must be a duration above zero"), caught.value
    assert f"(got {shown})" in str(caught.value)


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
@pytest.mark.parametrize("table", ["drill", "profiles.ci"])
def test_seed_scale_must_be_finite_and_above_zero(tmp_path: Path, table: str, value: str) -> None:
    path = tmp_path / "drill.toml"
    path.write_text(f"[{table}]\nseed_scale = {value}\n")
    with pytest.raises(ConfigError, match=rf"drill.toml:2: \[{table}.seed_scale\] must be a number above 0"):
        load_config(path)


@pytest.mark.parametrize("port", ["99999", "5x", "0"])
def test_a_url_with_a_bad_port_is_one_line_of_error_from_check_and_run(drill_dir: Path, write_feature: Any,
                                                                       port: str) -> None:
    write_feature("live.feature", LIVE_FEATURE)
    (drill_dir / "drill.toml").write_text(LIVE_TOML)
    env = {"PROD_URL": f"postgresql://owner:Hidden-pw-1@127.0.0.1:{port}/prod"}
    for command in ("check", "run"):
        run = run_drill(drill_dir, command, env=env)
        assert run.code == 2, run.output
        assert f"features/live.feature:3: PROD_URL has a bad port '{port}': a port is a number from 1 to 65535" \
            in run.stderr, run.stderr
        assert "Traceback" not in run.output and "Hidden-pw-1" not in run.output
        assert run.results is None  # nothing ran


def test_an_unset_url_env_is_reported_by_check_and_refused_by_run(drill_dir: Path, write_feature: Any) -> None:
    write_feature("live.feature", LIVE_FEATURE)
    (drill_dir / "drill.toml").write_text(LIVE_TOML)
    for command in ("check", "run"):
        run = run_drill(drill_dir, command, env={"PROD_URL": ""})
        assert run.code == 2, run.output
        assert ("features/live.feature:3: environment variable PROD_URL is not set; it must hold the connection "
                "URL of live store 'prod'") in run.stderr, run.stderr
        assert run.results is None


def test_a_store_declared_as_two_kinds_in_one_scenario_is_an_error(drill_dir: Path, write_feature: Any) -> None:
    write_feature("two.feature", '''Feature: two kinds
  Scenario: one name, two kinds
    Given the PostgreSQL store "cache"
    And the Redis store "cache"
''')
    run = run_drill(drill_dir, "check")
    assert run.code == 2, run.output
    assert ("features/two.feature:4: store 'cache' is declared again as a Redis store; it is a postgres store in "
            "this scenario") in run.stderr


def test_an_unknown_report_format_fails_before_the_drill_starts(drill_dir: Path, write_feature: Any) -> None:
    write_feature("ok.feature", 'Feature: ok\n  Scenario: fine\n    Given the PostgreSQL store "db"\n')
    run = run_drill(drill_dir, "run", "--report-format", "pdf")
    assert run.code == 2, run.output
    assert "unknown report format 'pdf'" in run.stderr
    assert run.results is None and not (drill_dir / "reports").exists()  # the drill never started
    assert "provision" not in run.output


def test_a_zero_target_tag_is_refused_with_its_line(drill_dir: Path, write_feature: Any) -> None:
    write_feature("zero.feature", 'Feature: z\n  @rto:0s\n  Scenario: s\n    Given the PostgreSQL store "db"\n')
    run = run_drill(drill_dir, "check")
    assert run.code == 2
    assert "zero.feature:3: @rto:0s: a target must be above 0" in run.stderr, run.stderr
