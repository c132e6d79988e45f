"""A query step only reads a live store that does not allow writes: one statement, READ ONLY, rolled back.

The live server is a PostgreSQL started by the test (scram passwords, a non-superuser owner); psql,
not drill, says whether the table survived.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_drill
from tests.live_servers import LivePostgres
from tests.oracles import pg_state

FEATURE = '''Feature: query checks on a live store
  Scenario: a drop hidden before a select
    Given the PostgreSQL store "prod"
    Then the query "DROP TABLE victim; SELECT 1" on "prod" returns "1"

  Scenario: a drop on its own
    Given the PostgreSQL store "prod"
    Then the query "DROP TABLE victim" on "prod" returns ""

  Scenario: a delete inside one select
    Given the PostgreSQL store "prod"
    Then the query "WITH gone AS (DELETE FROM victim RETURNING 1) SELECT count(*) FROM gone" on "prod" returns "3"

  Scenario: booleans read as psql prints them
    Given the PostgreSQL store "prod"
    Then the query "SELECT count(*) = 3 FROM victim" on "prod" returns "t"
    And the query "SELECT count(*) = 3 FROM victim" on "prod" returns "true"
    And the query "SELECT count(*) = 4 FROM victim" on "prod" returns "f"
    And the query "SELECT count(*) FROM victim" on "prod" returns "3"
'''


def test_a_query_step_cannot_write_to_a_live_store_without_allow_writes(tmp_path: Path) -> None:
    with LivePostgres() as pg:
        pg.create_database("prod")
        pg.psql("SET ROLE ledger_owner; CREATE TABLE victim (id int); INSERT INTO victim VALUES (1), (2), (3)", "prod")
        pg.seed_ledger("prod", rows=200)  # more than the victim: every table and the catalog are compared
        before = pg_state(pg, "prod")
        (tmp_path / "features").mkdir()
        (tmp_path / "features" / "query.feature").write_text(FEATURE)
        (tmp_path / "drill.toml").write_text('[stores.prod]\nkind = "postgres"\nprovision = "live"\n'
                                             'url_env = "PROD_URL"\n')
        run = run_drill(tmp_path, "run", env={"PROD_URL": pg.url("prod")})
        hidden = run.scenario("a drop hidden before a select")
        assert hidden["status"] == "failed"
        assert "a query check runs one statement" in hidden["errors"][0]["message"]
        alone = run.scenario("a drop on its own")
        assert alone["status"] == "failed"
        assert "cannot execute DROP TABLE in a read-only transaction" in alone["errors"][0]["message"]
        assert "allow_writes = true" in alone["errors"][0]["message"]
        through = run.scenario("a delete inside one select")
        assert through["status"] == "failed" and "read-only transaction" in through["errors"][0]["message"]
        booleans = run.scenario("booleans read as psql prints them")
        assert booleans["status"] == "passed", run.output
        # psql's view: the table and its rows are all still there, and nothing else changed either.
        assert pg.psql("SELECT count(*) FROM victim", "prod") == "3"
        assert pg_state(pg, "prod") == before

