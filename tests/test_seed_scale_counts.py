"""`seed_scale` shrinks counts of data drill seeded, never of production's data (issue scale21/1).

Under a profile with `seed_scale = 0.1`, `holds at least 4700 rows` used to expect 470 of a production dump
too, so a dump holding a tenth of its rows passed. Here the dump is made by the test with pg_dump from a
PostgreSQL cluster it started itself, the live store is that cluster, and the figures the checks must meet
are what psql counted there, never what drill says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DrillRun, run_drill
from tests.live_servers import LivePostgres
from tests.runbook_fixtures import pg_dump_gz, stamp

TOML = '''
[drill]
default_profile = "ci"

[profiles.ci]
seed_scale = 0.1

[stores.prod]
kind = "postgres"
provision = "live"
url_env = "PROD_URL"
'''

FEATURE = '''Feature: seed_scale applies to seeded data only
  Scenario: a production dump restored into a scratch database
    Given the PostgreSQL store "userdb"
    And the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"
    When "userdb" is restored from its latest backup into "userdb_verify"
    Then "userdb_verify" holds at least 4700 rows

  Scenario: a seeded store overwritten by a production dump
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 100 rows
    And the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"
    When "userdb" is restored from its latest backup
    Then "userdb" holds 500 rows

  Scenario: a live store
    Given the PostgreSQL store "prod"
    Then "prod" holds at least 4700 rows

  Scenario: seeded data through a backup, in place and into a copy
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 1000 rows
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" holds 1000 rows
    When "userdb" is restored from its latest backup into "userdb_copy"
    Then "userdb_copy" holds at least 1000 rows
'''


@pytest.fixture(scope="module")
def production() -> Iterator[LivePostgres]:
    """A cluster of the test's own whose database `prod` holds 500 rows, counted by psql."""
    with LivePostgres() as pg:
        pg.create_database("prod")
        pg.psql(f"SET ROLE {pg.OWNER}; CREATE TABLE users AS SELECT g AS id, 'user ' || g AS name "
                "FROM generate_series(1, 500) g", "prod")
        yield pg


@pytest.fixture(scope="module")
def run(production: LivePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DrillRun, int, Path]]:
    project = tmp_path_factory.mktemp("scale")
    rows = int(production.psql("SELECT count(*) FROM users", "prod"))
    pg_dump_gz(production, "prod", project / "backups" / "postgres" / f"userdb_{stamp()}.sql.gz")
    (project / "features").mkdir()
    (project / "features" / "scale.feature").write_text(FEATURE)
    (project / "drill.toml").write_text(TOML)
    done = run_drill(project, "run", env={"PROD_URL": production.url("prod")}, timeout=600)
    # The live store is as it was: a read-only drill.
    assert int(production.psql("SELECT count(*) FROM users", "prod")) == rows
    yield done, rows, project


def _count(scenario: dict[str, Any], what: str) -> dict[str, Any]:
    counts: dict[str, Any] = scenario["evidence"]["counts"]
    assert what in counts, counts
    return dict(counts[what])


def _message(scenario: dict[str, Any]) -> str:
    return " ".join(e["message"] for e in scenario["errors"])


def test_a_production_dump_is_held_to_the_figure_as_written(run: tuple[DrillRun, int, Path]) -> None:
    done, rows, _project = run
    assert rows == 500
    scenario = done.scenario("a production dump restored into a scratch database")
    assert scenario["status"] == "failed", done.output
    assert (f"'userdb_verify' holds {rows} rows, expected at least 4700 (not scaled by seed_scale 0.1"
            in _message(scenario)), _message(scenario)
    assert _count(scenario, "userdb_verify") == {"expected": 4700, "actual": rows, "at_least": True,
                                                 "scaled_from": None}
    assert done.code != 0


def test_a_dump_restored_over_seeded_data_is_not_scaled(run: tuple[DrillRun, int, Path]) -> None:
    done, rows, _project = run
    scenario = done.scenario("a seeded store overwritten by a production dump")
    assert scenario["status"] == "passed", _message(scenario) + done.output
    assert _count(scenario, "userdb") == {"expected": rows, "actual": rows, "at_least": False, "scaled_from": None}


def test_a_live_store_is_held_to_the_figure_as_written(run: tuple[DrillRun, int, Path]) -> None:
    done, rows, _project = run
    scenario = done.scenario("a live store")
    assert scenario["status"] == "failed", done.output
    assert f"'prod' holds {rows} rows, expected at least 4700 (not scaled" in _message(scenario)
    assert _count(scenario, "prod")["scaled_from"] is None


def test_seeded_data_is_still_counted_at_the_scaled_figure(run: tuple[DrillRun, int, Path]) -> None:
    done, _rows, project = run
    scenario = done.scenario("seeded data through a backup, in place and into a copy")
    assert scenario["status"] == "passed", _message(scenario) + done.output
    assert scenario["evidence"]["seeded"] == {"userdb": 100}
    assert _count(scenario, "userdb") == {"expected": 100, "actual": 100, "at_least": False, "scaled_from": 1000}
    assert _count(scenario, "userdb_copy")["scaled_from"] == 1000
    assert _count(scenario, "userdb_copy")["expected"] == 100
    # The report says so under the expected figure.
    [report] = project.glob("reports/*/report.html")
    assert "1000 scaled by seed_scale" in report.read_text()
