"""Canaries: `drill canary` writes into a live PostgreSQL and a live Redis (started here, outside drill), a
runbook-style backup is made by the servers' own tools (pg_dump | gzip; redis-cli SAVE and a copy), and the
drill that restores it takes its RPO from the newest canary found in the restored copy, read back here with
psql and redis-py. A copy of the backup renamed to a newer date is caught: "the backup is older than its name
says". `drill canary` is as cron-friendly as `drill backup`, and refuses stores it may not write into.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_drill
from tests.live_servers import LivePostgres, LiveRedis
from tests.oracles import pg_tables

STAMP = "%Y%m%d_%H%M%S"
INTERVAL = 10.0  # canary_interval of the verify stores below: a copy dated later than this after the canary is caught
RENAMED_BY = 40  # seconds a renamed copy's date is ahead of the canary (within drill's 60 s allowance for clock skew)


def _stamp(epoch: float) -> str:
    return time.strftime(STAMP, time.gmtime(epoch))


@pytest.fixture(scope="module")
def live_pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.create_database("ledger")
        server.seed_ledger("ledger", rows=500)
        yield server


@pytest.fixture(scope="module")
def live_redis() -> Iterator[LiveRedis]:
    with LiveRedis() as server:
        client: Any = server.client()
        for i in range(300):
            client.set(f"session:{i}", f"user-{i}", ex=3600 if i % 3 == 0 else None)
        for i in range(50):
            client.hset(f"profile:{i}", mapping={"name": f"n{i}", "visits": i})
        yield server


def _pg_dump_gz(pg: LivePostgres, database: str, target: Path) -> None:
    """The runbook's backup: `pg_dump | gzip > userdb_YYYYmmdd_HHMMSS.sql.gz`, with the server's own pg_dump.
    --no-owner: the dump is restored on a throwaway server that has none of production's roles."""
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["bash", "-c", 'set -o pipefail; "$PG_DUMP" --no-owner -h 127.0.0.1 -p "$PORT" -U postgres '
                           '-d "$DB" | gzip > "$OUT"'], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PG_DUMP": str(pg.bin / "pg_dump"), "PORT": str(pg.port), "DB": database,
                               "OUT": str(target), "PGPASSWORD": pg.SUPER_PASSWORD})
    assert done.returncode == 0, done.stderr


def _redis_save_copy(redis: LiveRedis, target: Path) -> None:
    """The runbook's backup: `redis-cli SAVE`, then a copy of the server's dump.rdb."""
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "--no-auth-warning", "-a",
                           redis.PASSWORD, "SAVE"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stdout + done.stderr
    shutil.copyfile(redis.root / "dump.rdb", target)


def _project(root: Path, toml: str, feature: str) -> None:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "nightly.feature").write_text(feature, encoding="utf-8")
    (root / "drill.toml").write_text(toml, encoding="utf-8")


PG_TOML = f'''
[stores.ledger]
kind = "postgres"
provision = "live"
url_env = "LEDGER_URL"
allow_writes = true

[stores.ledger_verify]
kind = "postgres"
canary_interval = "{int(INTERVAL)}s"
'''

PG_FEATURE = '''Feature: nightly verification of the ledger's dumps
  Scenario: last night's dump of the ledger
    Given the PostgreSQL store "ledger_verify"
    And the latest backup of "ledger_verify" in "backups/postgres/ledger_*.sql.gz"
    When "ledger_verify" is restored from its latest backup
    Then "ledger_verify" holds at least 500 rows in "entries"
    And the data loss is at most 1 hour
'''


def test_a_canary_in_a_live_postgres_gives_the_rpo_of_its_pg_dump_and_a_renamed_dump_is_caught(
        tmp_path: Path, live_pg: LivePostgres) -> None:
    _project(tmp_path, PG_TOML, PG_FEATURE)
    env = {"LEDGER_URL": live_pg.url("ledger")}
    before = pg_tables(live_pg, "ledger")

    canary = run_drill(tmp_path, "canary", "ledger", env=env)
    assert canary.code == 0 and canary.stdout == "" and canary.stderr == "", canary.output
    rows = live_pg.psql("SELECT seq, written_at FROM drill_markers ORDER BY seq", "ledger").splitlines()
    assert len(rows) == 1 and rows[0].startswith("1|"), rows
    written_at = float(rows[0].split("|")[1])
    assert abs(written_at - time.time()) < 60
    after = pg_tables(live_pg, "ledger")
    assert {t: v for t, v in after.items() if t != "public.drill_markers"} == before  # one canary row, nothing else
    log = (tmp_path / "backups" / "drill-backup.log").read_text()
    assert " drill canary ledger ok seq=1 " in log, log

    dump = tmp_path / "backups" / "postgres" / f"ledger_{_stamp(time.time())}.sql.gz"
    _pg_dump_gz(live_pg, "ledger", dump)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("last night's dump of the ledger")
    assert scenario["status"] == "passed", run.output
    assert scenario["rpo_method"] == "canary"
    found = scenario["evidence"]["markers"]["ledger_verify"]
    assert found["canary_seq"] == 1 and found["canary_at"] == written_at  # the row psql read on the live server
    assert found["recovery_point"] == written_at and found["method"] == "canary"
    assert 0 < scenario["rpo_seconds"] == found["rpo_seconds"] < 600

    restore = run_drill(tmp_path, "restore", "ledger_verify", "--from", "backups/postgres/ledger_*.sql.gz",
                        "--test-mode", "--expect-at-least", "500")
    assert restore.code == 0, restore.output
    assert "from its newest canary" in restore.stdout and "rpo_method=canary" in \
        (tmp_path / "backups" / "drill-backup.log").read_text()

    # The same dump renamed to a newer date: its name says later than its data does.
    renamed = dump.with_name(f"ledger_{_stamp(written_at + RENAMED_BY)}.sql.gz")
    shutil.copyfile(dump, renamed)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("last night's dump of the ledger")
    assert scenario["status"] == "failed" and run.code == 1, run.output
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "the backup is older than its name says" in message and str(renamed) in message, message
    assert [s["text"] for s in scenario["steps"] if s["status"] == "failed"] == \
        ['"ledger_verify" is restored from its latest backup']

    restore = run_drill(tmp_path, "restore", "ledger_verify", "--from", "backups/postgres/ledger_*.sql.gz",
                        "--test-mode")
    assert restore.code == 1, restore.output
    error = restore.stderr.strip()
    assert len(error.splitlines()) == 1 and "the backup is older than its name says" in error and renamed.name in error


REDIS_TOML = f'''
[stores.cache]
kind = "redis"
provision = "live"
url_env = "CACHE_URL"
allow_writes = true

[stores.cache_verify]
kind = "redis"
canary_interval = "{int(INTERVAL)}s"
'''

REDIS_FEATURE = '''Feature: nightly verification of the cache's snapshots
  Scenario: last night's snapshot of the cache
    Given the Redis store "cache_verify"
    And the latest backup of "cache_verify" in "backups/redis/dump_*.rdb"
    When "cache_verify" is restored from its latest backup
    Then "cache_verify" holds 350 keys
    And "cache_verify" holds 100 keys with a TTL
    And "cache_verify" holds 300 keys matching "session:*"
'''


def test_a_canary_in_a_live_redis_gives_the_rpo_of_its_rdb_copy_and_a_renamed_copy_is_caught(
        tmp_path: Path, live_redis: LiveRedis) -> None:
    _project(tmp_path, REDIS_TOML, REDIS_FEATURE)
    env = {"CACHE_URL": live_redis.url()}
    client: Any = live_redis.client()
    canary = run_drill(tmp_path, "canary", "cache", env=env)
    assert canary.code == 0 and canary.stdout == "", canary.output
    members = client.zrange("drill:markers", 0, -1)
    assert len(members) == 1, members
    seq, _, written = members[0].decode().partition(":")
    written_at = float(written)
    assert seq == "1" and client.dbsize() == 351  # the 350 keys and the canary's sorted set

    rdb = tmp_path / "backups" / "redis" / f"dump_{_stamp(time.time())}.rdb"
    _redis_save_copy(live_redis, rdb)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("last night's snapshot of the cache")
    assert scenario["status"] == "passed", run.output
    assert scenario["rpo_method"] == "canary"
    found = scenario["evidence"]["markers"]["cache_verify"]
    assert found["canary_at"] == written_at and found["recovery_point"] == written_at  # as redis-py read it
    counts = scenario["evidence"]["counts"]
    assert counts["cache_verify with a TTL"]["actual"] == 100 == len([i for i in range(300) if i % 3 == 0])

    renamed = rdb.with_name(f"dump_{_stamp(written_at + RENAMED_BY)}.rdb")
    shutil.copyfile(rdb, renamed)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("last night's snapshot of the cache")
    assert scenario["status"] == "failed", run.output
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "the backup is older than its name says" in message and str(renamed) in message, message


def test_a_second_canary_is_numbered_after_the_first_and_a_replayed_snapshot_fails_with_the_default_interval(
        tmp_path: Path, live_redis: LiveRedis) -> None:
    """A snapshot from three hours ago replayed under today's name, with the default interval (1 hour)."""
    toml = REDIS_TOML.replace(f'canary_interval = "{int(INTERVAL)}s"\n', "")
    _project(tmp_path, toml, REDIS_FEATURE)
    client: Any = live_redis.client()
    client.delete("drill:markers")
    env = {"CACHE_URL": live_redis.url()}
    assert run_drill(tmp_path, "canary", "cache", env=env).code == 0
    assert run_drill(tmp_path, "canary", "cache", env=env).code == 0
    seqs = [m.decode().partition(":")[0] for m in client.zrange("drill:markers", 0, -1)]
    assert seqs == ["1", "2"]
    # Yesterday's production, as a replayed snapshot holds it: its newest canary is three hours old.
    client.delete("drill:markers")
    old = time.time() - 3 * 3600
    client.zadd("drill:markers", {f"7:{old!r}": 7})
    _redis_save_copy(live_redis, tmp_path / "backups" / "redis" / f"dump_{_stamp(time.time())}.rdb")
    client.delete("drill:markers")
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("last night's snapshot of the cache")
    message = " ".join(e["message"] for e in scenario["errors"])
    assert scenario["status"] == "failed" and "the backup is older than its name says" in message, run.output
    assert "canaries are written every 1h" in message


def test_drill_canary_refuses_a_store_it_may_not_write_into(tmp_path: Path, live_pg: LivePostgres) -> None:
    live_pg.create_database("readonly")
    (tmp_path / "drill.toml").write_text('''
[stores.readonly]
kind = "postgres"
provision = "live"
url_env = "RO_URL"

[stores.scratch]
kind = "postgres"
''')
    refused = run_drill(tmp_path, "canary", "readonly", env={"RO_URL": live_pg.url("readonly")})
    assert refused.code == 2 and "allow_writes = true" in refused.stderr, refused.output
    assert live_pg.psql("SELECT to_regclass('public.drill_markers') IS NULL", "readonly") == "t"
    local = run_drill(tmp_path, "canary", "scratch")
    assert local.code == 2 and "writes into live stores" in local.stderr, local.output
    log = (tmp_path / "backups" / "drill-backup.log").read_text()
    assert " drill canary readonly refused " in log and live_pg.OWNER_PASSWORD not in log


WRITER_FEATURE = '''Feature: a drill on a store that holds canaries
  Scenario: writes recorded after the canaries
    Given the PostgreSQL store "ledger"
    And writes to "ledger" are recorded every 100 milliseconds
    And a backup of "ledger" is taken
    When "ledger" is restored from its latest backup into "ledger_copy"
    Then "ledger_copy" matches the state of "ledger" at the backup
'''


def test_a_marker_writer_numbers_its_markers_after_the_canaries(tmp_path: Path, live_pg: LivePostgres) -> None:
    # A database of its own: the writer leaves markers behind, which the other tests' "ledger" must not see
    # whatever order the tests run in.
    live_pg.create_database("writer_ledger")
    live_pg.seed_ledger("writer_ledger", rows=500)
    _project(tmp_path, PG_TOML, WRITER_FEATURE)
    env = {"LEDGER_URL": live_pg.url("writer_ledger")}
    assert run_drill(tmp_path, "canary", "ledger", env=env).code == 0
    last_canary = int(live_pg.psql("SELECT max(seq) FROM drill_markers", "writer_ledger"))
    run = run_drill(tmp_path, "run", "--report-format", "none", env=env)
    scenario = run.scenario("writes recorded after the canaries")
    assert scenario["status"] == "passed", run.output
    assert scenario["rpo_method"] == "markers"
    seqs = [int(s) for s in live_pg.psql(f"SELECT seq FROM drill_markers WHERE seq > {last_canary} ORDER BY seq",
                                         "writer_ledger").splitlines()]
    assert seqs and seqs == list(range(last_canary + 1, last_canary + 1 + len(seqs)))  # no clash, no gap
    assert scenario["evidence"]["markers"]["ledger"]["last_seq"] == seqs[-1]
    assert scenario["evidence"]["markers"]["ledger_copy"]["newest_surviving_seq"] > last_canary
