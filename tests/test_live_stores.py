"""Live stores: never destroyed or overwritten without `destructive = true` (a restore goes into a new
database only when the sentence says `into`), and the password of the live URL appears nowhere in
results, reports, backups or output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from drill.provision import pg_binaries
from drill.provision.local_postgres import LocalPostgresCluster
from tests.conftest import run_drill
from tests.live_servers import postgres_bin_dir, secrets_in, secrets_in_files
from tests.oracles import pg_state

PASSWORD = "Sup3r-S3cret-pw"

FEATURE = '''Feature: live drills
  Scenario: a test-mode restore of a live database
    Given the PostgreSQL store "prod"
    And "prod" is seeded with 300 rows
    And writes to "prod" are recorded every 100 milliseconds
    And a backup of "prod" is taken
    When "prod" is restored from its latest backup into "prod_drill"
    Then "prod_drill" matches the state of "prod" at the backup
    And "prod" holds 300 rows
'''

REFUSED = '''Feature: live drills refused
  Scenario: a plain restore of a live database that may not be overwritten is refused
    Given the PostgreSQL store "prod"
    And a backup of "prod" is taken
    When "prod" is restored from its latest backup
    Then "prod" matches its state at the backup

  Scenario: losing a live database that may not be destroyed
    Given the PostgreSQL store "prod"
    And a backup of "prod" is taken
    When "prod" is lost
    And "prod" is restored from its latest backup
'''

CONFIG = '''
[stores.prod]
kind = "postgres"
provision = "live"
url_env = "PROD_URL"
allow_writes = true
'''


@pytest.fixture(scope="module")
def live_server() -> Iterator[LocalPostgresCluster]:
    """A real password-protected server standing in for production (drill reaches it only by URL)."""
    with LocalPostgresCluster(pg_binaries.for_local_cluster(), superuser_password=PASSWORD) as cluster:
        with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE prod")
        yield cluster


@dataclass
class _Psql:
    """The oracle's way in (tests/oracles.py): the server's own psql, not drill."""

    cluster: LocalPostgresCluster

    def psql(self, sql: str, database: str) -> str:
        env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run([str(postgres_bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.cluster.port), "-U", "postgres", "-d", database,
                               "-c", sql], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _databases(cluster: LocalPostgresCluster) -> set[str]:
    with psycopg.connect(cluster.conninfo("postgres")) as conn:
        return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database")}


def test_live_drill_restores_elsewhere_refuses_destruction_and_never_leaks_the_password(
        tmp_path: Path, live_server: LocalPostgresCluster) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "live.feature").write_text(FEATURE)
    (tmp_path / "drill.toml").write_text(CONFIG)
    url = live_server.url("prod")
    assert PASSWORD in url
    run = run_drill(tmp_path, "run", env={"PROD_URL": url})
    seeded = pg_state(_Psql(live_server), "prod")  # what the seed (allowed) left: the refusals must keep all of it
    assert seeded["tables"]["public.users"][0] == 60, seeded["tables"].keys()
    (tmp_path / "features" / "refused.feature").write_text(REFUSED)
    (tmp_path / "features" / "live.feature").unlink()
    refusals = run_drill(tmp_path, "run", env={"PROD_URL": url})

    restore = run.scenario("a test-mode restore of a live database")
    assert restore["status"] == "passed", run.output
    assert restore["evidence"]["fingerprints"]["prod_drill"]["differences"] == []
    assert restore["evidence"]["stores"]["prod"]["location"] == f"postgresql://postgres@127.0.0.1:{live_server.port}/prod"

    # In place means in place: without `destructive = true` a plain restore is refused, naming both ways out.
    plain = refusals.scenario("a plain restore of a live database that may not be overwritten is refused")
    assert plain["status"] == "failed", refusals.output
    assert "refusing to restore live store 'prod' in place" in plain["errors"][0]["message"]
    assert '"prod" is restored from its latest backup into "prod_restored"' in plain["errors"][0]["message"]
    assert plain["rto_seconds"] is None

    refused = refusals.scenario("losing a live database that may not be destroyed")
    assert refused["status"] == "failed"
    message = refused["errors"][0]["message"]
    assert "refusing to lose live store 'prod'" in message
    assert "destructive = true" in message and "[stores.prod]" in message
    assert refused["steps"][2]["status"] == "failed" and refused["steps"][3]["status"] == "not_run"
    assert refused["rto_seconds"] is None  # refused before the clock started

    # Production is intact and the scratch database is gone.
    databases = _databases(live_server)
    assert "prod" in databases and not [d for d in databases if d.startswith("prod_drill")]
    with psycopg.connect(live_server.conninfo("prod")) as conn:
        row = conn.execute("SELECT count(*) FROM users").fetchone()
    assert row is not None and row[0] == 60
    assert pg_state(_Psql(live_server), "prod") == seeded  # psql: every table's rows and the catalog unchanged

    # The password is nowhere: output, results, reports, backup manifests.
    assert secrets_in(run.output + refusals.output, PASSWORD) == []
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert {"results.json", "report.html", "junit.xml"} <= written
    assert secrets_in_files(tmp_path, PASSWORD) == {}  # every byte of every file, raw, URL-encoded or base64


def test_wrong_password_error_does_not_echo_the_url(tmp_path: Path, live_server: LocalPostgresCluster) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "live.feature").write_text(FEATURE.split("\n  Scenario: losing")[0] + "\n")
    (tmp_path / "drill.toml").write_text(CONFIG)
    wrong = live_server.url("prod").replace(PASSWORD, "Wr0ng-pa55word")
    run = run_drill(tmp_path, "run", env={"PROD_URL": wrong})
    assert run.code == 1
    scenario = run.scenario("a test-mode restore of a live database")
    assert "password authentication failed" in scenario["errors"][0]["message"]
    assert secrets_in(run.output, "Wr0ng-pa55word") == []
    assert secrets_in_files(tmp_path, "Wr0ng-pa55word") == {}


def test_a_missing_url_variable_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "live.feature").write_text(FEATURE.split("\n  Scenario: losing")[0] + "\n")
    (tmp_path / "drill.toml").write_text(CONFIG)
    run = run_drill(tmp_path, "run", env={"PROD_URL": ""})
    assert run.code == 2 and run.results is None  # refused before anything runs
    assert "live.feature:3: environment variable PROD_URL is not set" in run.stderr
