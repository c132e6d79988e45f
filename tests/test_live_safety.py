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


# -- drill restore --overwrite ------------------------------------------------------------------------------


def test_drill_restore_overwrite_re_creates_a_database_that_no_longer_exists(pg: LivePostgres,
                                                                            tmp_path: Path) -> None:
    pg.create_database("ledger_gone")
    pg.seed_ledger("ledger_gone", rows=200)
    before = pg_state(pg, "ledger_gone")
    (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\n\n' + LIVE_TOML.replace("destructive = true\n",
                                                                                            ""))
    env = {"LEDGER_URL": pg.url("ledger_gone")}
    assert run_drill(tmp_path, "backup", "ledger", env=env).code == 0
    pg.psql('DROP DATABASE "ledger_gone"')  # the runbook's dropdb, then: createdb, restore
    done = run_drill(tmp_path, "restore", "ledger", "--overwrite", env=env)
    assert done.code == 0, done.output
    assert "matching the fingerprint taken with the backup" in done.stdout
    assert pg_state(pg, "ledger_gone") == before
    assert pg.database_info("ledger_gone")["owner"] == pg.OWNER  # created by the role drill connects as


def test_drill_restore_overwrite_keeps_owner_encoding_and_locale(pg: LivePostgres, tmp_path: Path) -> None:
    before = make_ledger(pg, "ledger_kept")
    (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\n\n' + LIVE_TOML)
    env = {"LEDGER_URL": pg.url("ledger_kept", owner=False)}  # as the superuser: the owner must still be kept
    assert run_drill(tmp_path, "backup", "ledger", env=env).code == 0
    pg.psql("DELETE FROM entries WHERE id % 2 = 0", "ledger_kept")
    done = run_drill(tmp_path, "restore", "ledger", env=env)
    assert done.code == 0, done.output
    assert pg_state(pg, "ledger_kept") == before["state"]
    assert pg.database_info("ledger_kept") == before["info"]


# -- messages that point at the real cause ------------------------------------------------------------------


def test_consent_from_a_profile_is_named_in_the_messages(pg: LivePostgres, tmp_path: Path) -> None:
    before = make_ledger(pg, "ledger_profile")
    toml = '''[stores.ledger]
kind = "postgres"

[profiles.quarterly.stores.ledger]
provision = "live"
url_env = "LEDGER_URL"
destructive = true

[profiles.readonly.stores.ledger]
provision = "live"
url_env = "LEDGER_URL"
'''
    project(tmp_path, QUARTERLY, toml)
    env = {"LEDGER_URL": pg.url("ledger_profile")}
    refused = run_drill(tmp_path, "run", "--profile", "readonly", env=env)
    message = refused.scenario("the ledger is lost and restored")["errors"][0]["message"]
    assert "Set `destructive = true` under [profiles.readonly.stores.ledger] in drill.toml" in message, message
    assert pg_state(pg, "ledger_profile") == before["state"]  # refused: untouched
    allowed = run_drill(tmp_path, "run", "--profile", "quarterly", env=env)
    assert allowed.code == 0, allowed.output
    assert ("ledger is live and may be lost: `destructive = true` in [profiles.quarterly.stores.ledger] "
            "(profile 'quarterly', which this run uses)") in allowed.output
    # The allowed run lost and restored it in place: every row and the catalog as before, same owner and locale.
    assert pg_state(pg, "ledger_profile") == before["state"]
    assert pg.database_info("ledger_profile") == before["info"]


def test_a_live_redis_store_is_not_told_to_restore_into_a_new_target(tmp_path: Path) -> None:
    with LiveRedis() as live:
        live.client(0).set("k", "v")  # type: ignore[attr-defined]
        project(tmp_path, QUARTERLY.replace("PostgreSQL", "Redis").replace("ledger", "cache") + '''
  Scenario: restore over it
    Given the Redis store "cache"
    And a backup of "cache" is taken
    When "cache" is restored from its latest backup
''', '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\n')
        run = run_drill(tmp_path, "run", env={"CACHE_URL": live.url()})
        for name in ("the cache is lost and restored", "restore over it"):
            message = run.scenario(name)["errors"][0]["message"]
            assert "destructive = true" in message and "[stores.cache]" in message
            assert "into" not in message and "new target" not in message, message
        assert live.client(0).get("k") == b"v"  # type: ignore[attr-defined]


# -- writes allowed by allow_writes ---------------------------------------------------------------------------


def test_writes_a_live_store_allows_are_reported_and_left(pg: LivePostgres, tmp_path: Path) -> None:
    pg.create_database("ledger_writes")
    project(tmp_path, '''Feature: f
  Scenario: seeded
    Given the PostgreSQL store "ledger"
    And "ledger" is seeded with 300 rows
''', LIVE_TOML.replace("destructive = true", "allow_writes = true"))
    run = run_drill(tmp_path, "run", env={"LEDGER_URL": pg.url("ledger_writes")})
    assert run.code == 0, run.output
    check = live_checks(run.scenario("seeded"))["ledger"]
    assert check["outcome"] == "written by the drill" and check["ok"] is True
    assert check["reference"] == "a safety copy taken before it was seeded"
    assert "table public.users: present now but not at the backup (60 rows)" in check["differences"], check
    assert pg.psql("SELECT count(*) FROM users", "ledger_writes") == "60"  # the seed stays, as allowed


SQL_CHANGE = "UPDATE entries SET note = 'changed by the drill' WHERE id % 10 = 0; DELETE FROM entries WHERE id > 250"


def _sql_feature(after: str = "") -> str:
    return f'''Feature: f
  Scenario: sql
    Given the PostgreSQL store "ledger"
    And SQL is run on "ledger":
      """
      {SQL_CHANGE}
      """
{after}'''


def test_a_safety_copy_is_taken_before_sql_and_the_writes_allow_writes_permits_are_reported_and_left(
        pg: LivePostgres, tmp_path: Path) -> None:
    """allow_writes only: before the SQL step drill takes a safety copy; the final check reports the differences
    and leaves the writes. The oracle: the same SQL applied by psql to a copy made before the drill."""
    before = make_ledger(pg, "ledger_sql_writes")
    pg.psql('CREATE DATABASE "ledger_sql_expected" TEMPLATE "ledger_sql_writes"')
    pg.psql(SQL_CHANGE, "ledger_sql_expected")
    expected = pg_state(pg, "ledger_sql_expected")
    assert expected["tables"] != before["state"]["tables"]  # the SQL changes rows: the test can tell
    project(tmp_path, _sql_feature(), LIVE_TOML.replace("destructive = true", "allow_writes = true"))
    run = run_drill(tmp_path, "run", env={"LEDGER_URL": pg.url("ledger_sql_writes")})
    assert run.code == 0, run.output
    check = live_checks(run.scenario("sql"))["ledger"]
    assert check["reference"] == "a safety copy taken before it was changed by SQL", check
    assert check["outcome"] == "written by the drill" and check["ok"] is True, check
    assert any("public.entries" in d for d in check["differences"]), check
    assert pg_state(pg, "ledger_sql_writes") == expected  # the writes stay, exactly those of the SQL
    assert pg.database_info("ledger_sql_writes") == before["info"]
    assert not journal_dir(tmp_path, "ledger").exists()  # the check passed: the reference is gone


def test_a_live_store_lost_after_sql_is_put_back_from_the_safety_copy_taken_before_the_sql(
        pg: LivePostgres, tmp_path: Path) -> None:
    """destructive: SQL changes the store, then it is lost and nothing restores it. The final check puts it back
    from the safety copy taken before the SQL step, so it ends as it began (not as the SQL left it), and the
    scenario fails saying what drill did."""
    before = make_ledger(pg, "ledger_sql_lost")
    project(tmp_path, _sql_feature('    When "ledger" is lost\n'))
    run = run_drill(tmp_path, "run", env={"LEDGER_URL": pg.url("ledger_sql_lost")})
    assert run.code == 1, run.output
    scenario = run.scenario("sql")
    assert scenario["status"] == "failed"
    messages = "\n".join(e["message"] for e in scenario["errors"])
    assert "live store 'ledger' did not exist at the end of the scenario" in messages, messages
    assert "drill put it back from a safety copy taken before it was changed by SQL and verified it" in messages
    check = live_checks(scenario)["ledger"]
    assert check["outcome"] == "put back" and check["ok"] is False and check["verified"] is True, check
    assert pg_state(pg, "ledger_sql_lost") == before["state"]  # psql: as before the SQL, every row
    assert pg.database_info("ledger_sql_lost") == before["info"]
    report = next((tmp_path / "reports").glob("*/report.html")).read_text()
    assert "put back" in report and "a safety copy taken before it was changed by SQL" in report


# -- decrypted temp files left by a killed drill ---------------------------------------------------------------


def test_a_killed_drill_leaves_no_decrypted_backup_behind_after_the_next_run(pg: LivePostgres, tmp_path: Path) -> None:
    from drill import crypto

    before = make_ledger(pg, "ledger_enc")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    toml = '[repository]\npath = "repo"\nkey_file = "backup.key"\n\n' + LIVE_TOML
    project(tmp_path, '''Feature: f
  Scenario: from the repository
    Given the PostgreSQL store "ledger"
    And the latest backup of "ledger" in the repository
    When "ledger" is lost
    And "ledger" is restored from its latest backup
''', toml)
    crypto.new_key_file(tmp_path / "backup.key")
    env = {"LEDGER_URL": pg.url("ledger_enc"), "TMPDIR": str(tmp)}
    assert run_drill(tmp_path, "backup", "ledger", env=env).code == 0
    paused = start_paused_drill(tmp_path, "disaster:ledger", "run", env=env)
    paused.kill()
    left = [p for p in tmp.glob("drill-repo-*/**/*") if p.is_file() and p.read_bytes().startswith(b"PGDMP")]
    assert left, "the killed drill left no decrypted backup: nothing to prove"
    project(tmp_path, 'Feature: n\n  Scenario: next\n    Given the PostgreSQL store "ledger"\n', toml)
    run = run_drill(tmp_path, "run", env=env)
    assert run.code == 0, run.output
    assert not list(tmp.glob("drill-repo-*")), list(tmp.iterdir())
    assert pg_state(pg, "ledger_enc") == before["state"]  # and the lost database is back
