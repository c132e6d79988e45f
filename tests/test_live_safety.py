"""Live stores are never left worse than drill found them (DESIGN, safety invariant 1).

Every server here is started by the test itself, outside drill: PostgreSQL with scram-sha-256 passwords
and a database owned by the non-superuser `ledger_owner` (in LATIN1 with the C locale, so that a
database re-created with the server's defaults would differ), Redis with a password. drill gets only
their URLs. The oracles (tests/oracles.py: psql, redis-py) say what each store holds before and after;
the faults are real: a backup file corrupted on disk, a drill killed with SIGKILL or stopped with Ctrl-C
at the moment right after the disaster (drill/pause.py).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_drill, start_paused_drill
from tests.live_servers import LivePostgres, LiveRedis
from tests.oracles import debug_digest, pg_state, redis_state

QUARTERLY = '''Feature: quarterly drill
  Scenario: the ledger is lost and restored
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is lost
    And "ledger" is restored from its latest backup
    Then "ledger" matches its state at the backup
'''

LIVE_TOML = '''[stores.ledger]
kind = "postgres"
provision = "live"
url_env = "LEDGER_URL"
destructive = true
'''


@pytest.fixture(scope="module")
def pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        yield server


def make_ledger(pg: LivePostgres, name: str) -> dict[str, Any]:
    """A database owned by ledger_owner, in LATIN1 with the C locale, seeded; its state by psql."""
    pg.psql(f'CREATE DATABASE "{name}" OWNER {pg.OWNER} TEMPLATE template0 ENCODING \'LATIN1\' '
            "LC_COLLATE 'C' LC_CTYPE 'C'")
    pg.seed_ledger(name, rows=300)
    return {"state": pg_state(pg, name), "info": pg.database_info(name)}


def project(root: Path, feature: str, toml: str = LIVE_TOML) -> Path:
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "drill.feature").write_text(feature)
    (root / "drill.toml").write_text(toml)
    return root


def live_checks(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["store"]: check for check in scenario["live_stores"]}


def journal_dir(root: Path, store: str) -> Path:
    return root / "backups" / ".drill-safety" / store


@pytest.mark.parametrize("as_owner", [True, False], ids=["as the owner", "as the superuser"])
def test_the_quarterly_drill_restores_in_place_and_leaves_the_database_as_its_backup(
        pg: LivePostgres, tmp_path: Path, as_owner: bool) -> None:
    name = f"ledger_{'owner' if as_owner else 'super'}"
    before = make_ledger(pg, name)
    assert before["info"] == {"owner": pg.OWNER, "encoding": "LATIN1", "collate": "C", "ctype": "C"}
    databases = pg.databases()
    project(tmp_path, QUARTERLY)
    run = run_drill(tmp_path, "run", env={"LEDGER_URL": pg.url(name, owner=as_owner)})
    assert run.code == 0, run.output
    scenario = run.scenario("the ledger is lost and restored")
    assert scenario["status"] == "passed"
    # The live database is back, in place: same contents (row by row), catalog, owner, encoding and locale.
    assert pg_state(pg, name) == before["state"]
    assert pg.database_info(name) == before["info"]
    assert pg.databases() == databases  # nothing left beside it (no ledger_drill_… copy)
    check = live_checks(scenario)["ledger"]
    assert check["ok"] is True and check["verified"] is True, check
    assert check["outcome"] == "matches the backup restored into it"
    assert check["changes"][:2] == ["lost", f"restored in place from backup {scenario['evidence']['backups'][0]['id']}"]
    assert "a copy of backup" in check["reference"]
    assert not journal_dir(tmp_path, "ledger").exists()  # the reference (a copy of live data) is gone
    report_dir = next((tmp_path / "reports").glob("*/results.json")).parent
    summary = (report_dir / "summary.md").read_text()
    assert "**the ledger is lost and restored**: ledger: matches the backup restored into it (verified" in summary
    assert 'name="drill.live_store[ledger].outcome" value="matches the backup restored into it"' in (
        report_dir / "junit.xml").read_text()
    assert "Live stores at the end" in (report_dir / "report.html").read_text()


def test_an_in_place_restore_without_destructive_is_refused_before_anything_is_touched(
        pg: LivePostgres, tmp_path: Path) -> None:
    before = make_ledger(pg, "ledger_guarded")
    project(tmp_path, '''Feature: f
  Scenario: restore over a live store
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is restored from its latest backup
''', LIVE_TOML.replace("destructive = true\n", ""))
    run = run_drill(tmp_path, "run", env={"LEDGER_URL": pg.url("ledger_guarded")})
    scenario = run.scenario("restore over a live store")
    assert scenario["status"] == "failed"
    message = scenario["errors"][0]["message"]
    assert "refusing to restore live store 'ledger' in place" in message
    assert "set `destructive = true` under [stores.ledger]" in message
    assert 'When "ledger" is restored from its latest backup into "ledger_restored"' in message
    assert scenario["rto_seconds"] is None and "restore" not in [p["name"] for p in scenario["phases"]]
    assert pg_state(pg, "ledger_guarded") == before["state"]
    assert not journal_dir(tmp_path, "ledger").exists()


def test_a_corrupt_backup_after_the_disaster_ends_with_the_database_put_back_from_the_safety_copy(
        pg: LivePostgres, tmp_path: Path) -> None:
    before = make_ledger(pg, "ledger_corrupt")
    project(tmp_path, QUARTERLY)
    paused = start_paused_drill(tmp_path, "disaster:ledger", "run", env={"LEDGER_URL": pg.url("ledger_corrupt")})
    assert "ledger_corrupt" not in pg.databases()  # the disaster happened
    [backup] = (tmp_path / "backups" / "ledger").glob("*.dump")
    damaged = bytearray(backup.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # planted after the backup step: the restore must fail
    backup.write_bytes(bytes(damaged))
    output = paused.finish()
    assert paused.proc.returncode == 1, output
    results = json.loads(next((tmp_path / "reports").glob("*/results.json")).read_text())
    [scenario] = results["scenarios"]
    assert scenario["status"] == "failed"
    messages = "\n".join(e["message"] for e in scenario["errors"])
    assert "is corrupt: sha256" in messages
    assert "live store 'ledger' did not exist at the end of the scenario" in messages
    assert "drill put it back from a copy of backup" in messages and "and verified it" in messages
    check = live_checks(scenario)["ledger"]
    assert check["outcome"] == "put back" and check["ok"] is False and check["verified"] is True
    assert pg_state(pg, "ledger_corrupt") == before["state"]  # psql: every row is back
    assert pg.database_info("ledger_corrupt") == before["info"]
    assert scenario["rto_seconds"] is None


KILLED = '''Feature: killed
  Scenario: killed after the disaster
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is restored from its latest backup into "ledger_copy"
    And "ledger" is lost
    And "ledger" is restored from its latest backup
'''


@pytest.mark.parametrize("how", ["drill repair", "the next drill run"])
def test_a_drill_killed_after_the_disaster_is_finished_by_the_next_run(pg: LivePostgres, tmp_path: Path,
                                                                       how: str) -> None:
    name = "ledger_killed_" + ("repair" if how == "drill repair" else "run")
    before = make_ledger(pg, name)
    databases = pg.databases()
    project(tmp_path, KILLED.replace('"ledger_copy"', f'"{name}_copy"'))
    env = {"LEDGER_URL": pg.url(name)}
    paused = start_paused_drill(tmp_path, "disaster:ledger", "run", env=env)
    paused.kill()
    assert name not in pg.databases() and f"{name}_copy" in pg.databases()  # lost, and a copy left behind
    journal = json.loads((journal_dir(tmp_path, "ledger") / "journal.json").read_text())
    assert journal["damage"] == "lost" and journal["targets"] == [f"{name}_copy"]
    if how == "drill repair":
        done = run_drill(tmp_path, "repair", env=env)
        assert done.code == 0, done.output
        assert "ledger: repaired: drill (pid" in done.stdout and "outcome: put back" in done.stdout
        assert f"restore target(s) {name}_copy left on its server: dropped" in done.stdout
        again = run_drill(tmp_path, "repair", env=env)
        assert again.code == 0 and "nothing to repair" in again.stdout
    else:
        project(tmp_path, 'Feature: n\n  Scenario: next\n    Given the PostgreSQL store "ledger"\n')
        done = run_drill(tmp_path, "run", env=env)
        assert done.code == 0, done.output
        assert done.results is not None
        [repair] = done.results["repairs"]
        assert repair["store"] == "ledger" and repair["ok"] is True and repair["outcome"] == "put back"
        assert f"pid {paused.proc.pid}" in repair["interrupted"]
    assert pg_state(pg, name) == before["state"] and pg.database_info(name) == before["info"]
    assert pg.databases() == databases  # the copy is gone
    assert not journal_dir(tmp_path, "ledger").exists()


def test_ctrl_c_after_the_disaster_still_puts_the_live_store_back(pg: LivePostgres, tmp_path: Path) -> None:
    before = make_ledger(pg, "ledger_ctrl_c")
    project(tmp_path, QUARTERLY)
    paused = start_paused_drill(tmp_path, "disaster:ledger", "run", env={"LEDGER_URL": pg.url("ledger_ctrl_c")})
    output = paused.stop(signal.SIGINT)
    assert paused.proc.returncode == 130, output
    results = json.loads(next((tmp_path / "reports").glob("*/results.json")).read_text())
    [scenario] = results["scenarios"]
    assert scenario["status"] == "interrupted"
    check = live_checks(scenario)["ledger"]
    assert check["outcome"] == "put back" and check["verified"] is True, check
    assert pg_state(pg, "ledger_ctrl_c") == before["state"]
    assert not journal_dir(tmp_path, "ledger").exists()


def test_the_same_drill_against_a_live_redis_ends_equal_to_its_backup(tmp_path: Path) -> None:
    with LiveRedis() as live:
        client: Any = live.client(0)
        client.mset({f"user:{i}": f"value {i}" for i in range(200)})
        client.hset("profile:1", mapping={"name": "a", "plan": "pro"})
        client.rpush("queue", *[f"job {i}" for i in range(50)])
        client.set("session:1", "x", ex=3600)
        live.client(3).sadd("tags", "a", "b", "c")  # type: ignore[attr-defined]
        before, digest = redis_state(live.client), debug_digest(client)
        project(tmp_path, QUARTERLY.replace("PostgreSQL", "Redis").replace("ledger", "cache"),
                LIVE_TOML.replace("ledger", "cache").replace("LEDGER", "CACHE").replace('"postgres"', '"redis"'))
        run = run_drill(tmp_path, "run", env={"CACHE_URL": live.url()})
        assert run.code == 0, run.output
        scenario = run.scenario("the cache is lost and restored")
        assert live_checks(scenario)["cache"]["outcome"] == "matches the backup restored into it"
        assert redis_state(live.client) == before
        assert debug_digest(client) == digest
