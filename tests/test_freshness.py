"""Freshness without a restore, and the assertions of `drill restore`: how old a store's latest backup is (by the
date in its name, read in backup_time_zone, else its mtime; or its repository manifest), recorded as RPO
evidence; a stale backup, a backup dated in the future and a dump of an empty database each fail in one line
naming the file. The backups are files the test names and dates itself, and dumps made with pg_dump | gzip.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_drill
from tests.live_servers import LivePostgres, LiveRedis

STAMP = "%Y%m%d_%H%M%S"


def _named(folder: Path, prefix: str, when: float, zone: str = "UTC", suffix: str = ".sql.gz") -> Path:
    """An (empty) backup file named as the runbook's cron names it, in the cron machine's zone."""
    folder.mkdir(parents=True, exist_ok=True)
    local = dt.datetime.fromtimestamp(when, zoneinfo.ZoneInfo(zone))
    path = folder / f"{prefix}_{local.strftime(STAMP)}{suffix}"
    path.write_bytes(b"")
    return path


def _feature(root: Path, body: str, toml: str = "") -> None:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "fresh.feature").write_text("Feature: freshness\n" + body, encoding="utf-8")
    (root / "drill.toml").write_text(toml, encoding="utf-8")


GLOB = '''  Scenario: the dumps are fresh
    Then the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz" is at most 1 hour old
'''


def test_a_fresh_backup_passes_without_provisioning_anything_and_its_age_is_the_rpo(tmp_path: Path) -> None:
    now = time.time()
    folder = tmp_path / "backups" / "postgres"
    _named(folder, "userdb", now - 3 * 3600)  # older ones do not count
    newest = _named(folder, "userdb", now - 600)
    _feature(tmp_path, GLOB)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("the dumps are fresh")
    assert scenario["status"] == "passed", run.output
    fresh = scenario["evidence"]["freshness"]["userdb"]
    assert fresh["path"] == str(newest) and fresh["dated_by"] == "name" and fresh["fresh"] is True
    named_at = dt.datetime.strptime(newest.name[7:22], STAMP).replace(tzinfo=dt.UTC).timestamp()
    assert fresh["dated_at"] == named_at and fresh["limit_seconds"] == 3600
    assert abs(fresh["age_seconds"] - (fresh["checked_at"] - named_at)) < 1e-6 and 600 <= fresh["age_seconds"] < 900
    assert scenario["rpo_method"] == "backup-age" and scenario["rpo_seconds"] == fresh["age_seconds"]
    assert scenario["evidence"]["stores"] == {}  # no store was provisioned to check a file's date


def test_a_stale_backup_fails_in_one_line_naming_the_file(tmp_path: Path) -> None:
    stale = _named(tmp_path / "backups" / "postgres", "userdb", time.time() - 3 * 3600 - 120)
    _feature(tmp_path, GLOB)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("the dumps are fresh")
    assert scenario["status"] == "failed" and run.code == 1
    (error,) = scenario["errors"]
    assert error["message"].startswith(f"stale backup: {stale} is 3h") and "\n" not in error["message"], error
    assert "more than 1h" in error["message"] and scenario["evidence"]["freshness"]["userdb"]["fresh"] is False


def test_a_date_in_a_name_is_read_in_the_backup_time_zone(tmp_path: Path) -> None:
    """Tokyo's cron names its dumps in Tokyo time (UTC+9, no summer time): read as UTC they are 9 hours ahead."""
    named = _named(tmp_path / "backups" / "postgres", "userdb", time.time() - 1800, zone="Asia/Tokyo")
    _feature(tmp_path, GLOB)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    message = " ".join(e["message"] for e in run.scenario("the dumps are fresh")["errors"])
    assert f"the latest backup of 'userdb', {named}, is dated in the future" in message, run.output
    assert "check backup_time_zone (now UTC)" in message

    for toml in ('[drill]\nbackup_time_zone = "Asia/Tokyo"\n',
                 '[stores.userdb]\nkind = "postgres"\nbackup_time_zone = "Asia/Tokyo"\n'):
        (tmp_path / "drill.toml").write_text(toml, encoding="utf-8")
        run = run_drill(tmp_path, "run", "--report-format", "none")
        scenario = run.scenario("the dumps are fresh")
        assert scenario["status"] == "passed", run.output
        fresh = scenario["evidence"]["freshness"]["userdb"]
        assert fresh["time_zone"] == "Asia/Tokyo" and 1800 <= fresh["age_seconds"] < 2100


def test_an_unknown_time_zone_is_refused_naming_the_line(tmp_path: Path) -> None:
    _feature(tmp_path, GLOB, '[drill]\nbackup_time_zone = "Mars/Olympus"\n')
    run = run_drill(tmp_path, "check")
    assert run.code == 2 and "drill.toml:2" in run.stderr and "'Mars/Olympus' is not a time zone" in run.stderr


def test_a_backup_without_a_date_in_its_name_is_dated_by_its_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "backups" / "postgres"
    folder.mkdir(parents=True)
    undated = folder / "userdb_latest.sql.gz"
    undated.write_bytes(b"")
    two_hours_ago = time.time() - 7200
    os.utime(undated, (two_hours_ago, two_hours_ago))
    _feature(tmp_path, GLOB)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("the dumps are fresh")
    assert scenario["status"] == "failed"
    assert scenario["evidence"]["freshness"]["userdb"]["dated_by"] == "mtime"
    assert ", from its mtime), more than 1h" in scenario["errors"][0]["message"]


def test_no_backup_at_all_fails_saying_where_it_looked(tmp_path: Path) -> None:
    _feature(tmp_path, GLOB)
    run = run_drill(tmp_path, "run", "--report-format", "none")
    message = run.scenario("the dumps are fresh")["errors"][0]["message"]
    assert "no backup of 'userdb' matches 'backups/postgres/userdb_*.sql.gz'" in message


def test_the_latest_backup_a_drill_took_is_checked(tmp_path: Path) -> None:
    _feature(tmp_path, '''  Scenario: a backup just taken
    Given the Redis store "cache"
    And "cache" is seeded with 20 keys
    And a backup of "cache" is taken
    Then the latest backup of "cache" is at most 1 minute old
''')
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("a backup just taken")
    assert scenario["status"] == "passed", run.output
    fresh = scenario["evidence"]["freshness"]["cache"]
    assert fresh["dated_by"] == "drill" and fresh["dated_at"] == scenario["evidence"]["backups"][0]["consistent_at"]


@pytest.fixture(scope="module")
def live_redis() -> Iterator[LiveRedis]:
    with LiveRedis() as server:
        client = server.client()
        for i in range(20):
            client.set(f"k{i}", i)  # type: ignore[attr-defined]
        yield server


REPOSITORY = '''  Scenario: production's backups are fresh
    Then the latest backup of "cache" is at most 1 hour old
'''


def test_the_repositorys_newest_backup_counts_when_the_scenario_knows_none(tmp_path: Path,
                                                                           live_redis: LiveRedis) -> None:
    _feature(tmp_path, REPOSITORY, '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\n')
    run = run_drill(tmp_path, "run", "--report-format", "none")
    assert "no latest backup of 'cache' is known" in run.scenario("production's backups are fresh")["errors"][0][
        "message"]
    backup = run_drill(tmp_path, "backup", "cache", env={"CACHE_URL": live_redis.url()})
    assert backup.code == 0, backup.output
    (manifest,) = (tmp_path / "backups" / "cache").glob("*/manifest.json")
    consistent_at = json.loads(manifest.read_text())["consistent_at"]
    run = run_drill(tmp_path, "run", "--report-format", "none")  # no store provisioned: no URL needed
    scenario = run.scenario("production's backups are fresh")
    assert scenario["status"] == "passed", run.output
    fresh = scenario["evidence"]["freshness"]["cache"]
    assert fresh["dated_by"] == "repository" and fresh["dated_at"] == consistent_at
    assert fresh["path"] == str(manifest.parent)


def _corrupt_one_byte(backup: Path) -> None:
    """Flip one byte in the middle of a committed backup's data (not its manifest), as a bad disk would."""
    [data] = [f for f in backup.iterdir() if f.is_file() and f.name not in ("manifest.json", "verified.json")]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))


def test_a_repository_backup_whose_verification_failed_does_not_count_as_fresh(tmp_path: Path,
                                                                                live_redis: LiveRedis) -> None:
    _feature(tmp_path, REPOSITORY, '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\n')
    for _ in range(2):
        backup = run_drill(tmp_path, "backup", "cache", env={"CACHE_URL": live_redis.url()})
        assert backup.code == 0, backup.output
    folders = sorted((m.parent for m in (tmp_path / "backups" / "cache").glob("*/manifest.json")),
                     key=lambda f: json.loads((f / "manifest.json").read_text())["created_at"])
    assert len(folders) == 2, folders
    older, newer = folders
    _corrupt_one_byte(newer)
    verify = run_drill(tmp_path, "backups", "verify", "cache", "--id", newer.name)
    assert verify.code != 0, verify.output
    assert json.loads((newer / "verified.json").read_text())["status"] == "failed"  # what verify recorded
    assert json.loads((older / "verified.json").read_text())["status"] == "ok"  # `drill backup` verified it

    run = run_drill(tmp_path, "run", "--report-format", "html")
    scenario = run.scenario("production's backups are fresh")
    assert scenario["status"] == "passed", run.output  # the older backup is fresh, and it counts
    fresh = scenario["evidence"]["freshness"]["cache"]
    assert fresh["backup"] == older.name and fresh["path"] == str(older)
    assert fresh["dated_at"] == json.loads((older / "manifest.json").read_text())["consistent_at"]
    [skipped] = fresh["skipped"]
    assert skipped.startswith(f"{newer.name} (verification failed at ") and "sha256" in skipped, skipped
    assert f"newer backup(s) skipped, their verification failed: {newer.name}" in run.output
    assert run.results is not None
    report = (tmp_path / "reports" / run.results["run_id"] / "report.html").read_text()
    assert f'<span class="missed">skipped: {newer.name} (verification failed at ' in report

    _corrupt_one_byte(older)
    verify = run_drill(tmp_path, "backups", "verify", "cache", "--id", older.name)
    assert verify.code != 0 and json.loads((older / "verified.json").read_text())["status"] == "failed"
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("production's backups are fresh")
    assert scenario["status"] == "failed", run.output
    message = scenario["errors"][0]["message"]
    assert "no usable backup of 'cache'" in message and "the verification of every one failed" in message, message
    assert newer.name in message and older.name in message
    assert "freshness" not in scenario["evidence"]


# -- drill restore --max-age / --expect-rows / --expect-at-least ------------------------------------------------

@pytest.fixture(scope="module")
def live_pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.create_database("ledger")
        server.seed_ledger("ledger", rows=300)
        server.create_database("emptydb")
        yield server


def _pg_dump_gz(pg: LivePostgres, database: str, target: Path) -> None:
    """`pg_dump | gzip`, as the runbook's cron does (--no-owner: restored where production's roles do not exist)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["bash", "-c", 'set -o pipefail; "$PG_DUMP" --no-owner -h 127.0.0.1 -p "$PORT" -U postgres '
                           '-d "$DB" | gzip > "$OUT"'], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PG_DUMP": str(pg.bin / "pg_dump"), "PORT": str(pg.port), "DB": database,
                               "OUT": str(target), "PGPASSWORD": pg.SUPER_PASSWORD})
    assert done.returncode == 0, done.stderr


RESTORE_TOML = '[stores.ledger]\nkind = "postgres"\n\n[stores.emptydb]\nkind = "postgres"\n'


def test_drill_restore_asserts_age_and_counts_and_fails_in_one_line_naming_the_file(
        tmp_path: Path, live_pg: LivePostgres) -> None:
    (tmp_path / "drill.toml").write_text(RESTORE_TOML, encoding="utf-8")
    folder = tmp_path / "backups" / "postgres"
    fresh = folder / f"ledger_{time.strftime(STAMP, time.gmtime(time.time() - 600))}.sql.gz"
    _pg_dump_gz(live_pg, "ledger", fresh)
    rows = int(live_pg.psql("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM entries)", "ledger"))
    glob = "backups/postgres/ledger_*.sql.gz"

    ok = run_drill(tmp_path, "restore", "ledger", "--from", glob, "--test-mode", "--max-age", "1h",
                   "--expect-rows", str(rows))
    assert ok.code == 0, ok.output
    assert f"{rows} rows as expected" in ok.stdout and "old (at most 1h)" in ok.stdout

    wrong = run_drill(tmp_path, "restore", "ledger", "--from", glob, "--test-mode", "--expect-rows", str(rows + 1))
    assert wrong.code == 1
    assert wrong.stderr.strip() == (f"drill: error: {fresh}: the restored copy holds {rows} rows, expected "
                                    f"{rows + 1} (--expect-rows)")

    stale = run_drill(tmp_path, "restore", "ledger", "--from", glob, "--test-mode", "--max-age", "5m")
    assert stale.code == 1 and len(stale.stderr.strip().splitlines()) == 1, stale.output
    assert stale.stderr.startswith(f"drill: error: stale backup: {fresh} is 10m") and "more than --max-age 5m" \
        in stale.stderr
    assert "restoring" not in stale.stdout  # refused before any target

    future = folder / f"ledger_{time.strftime(STAMP, time.gmtime(time.time() + 7200))}.sql.gz"
    future.write_bytes(fresh.read_bytes())
    ahead = run_drill(tmp_path, "restore", "ledger", "--from", glob, "--test-mode")
    assert ahead.code == 1 and f"{future} is dated in the future" in ahead.stderr, ahead.output
    future.unlink()


def test_a_dump_of_an_empty_database_fails_under_expect_at_least(tmp_path: Path, live_pg: LivePostgres) -> None:
    (tmp_path / "drill.toml").write_text(RESTORE_TOML, encoding="utf-8")
    empty = tmp_path / "backups" / "postgres" / f"emptydb_{time.strftime(STAMP, time.gmtime())}.sql.gz"
    _pg_dump_gz(live_pg, "emptydb", empty)
    passes = run_drill(tmp_path, "restore", "emptydb", "--from", str(empty), "--test-mode")
    assert passes.code == 0, passes.output  # what the runbook's restore says of it: nothing wrong
    run = run_drill(tmp_path, "restore", "emptydb", "--from", str(empty), "--test-mode", "--expect-at-least", "1500")
    assert run.code == 1
    assert run.stderr.strip() == (f"drill: error: {empty}: the restored copy holds 0 rows, expected at least 1500 "
                                  f"(--expect-at-least); it is the backup of an empty store")
    log = (tmp_path / "backups" / "drill-backup.log").read_text().splitlines()
    assert " drill restore emptydb failed " in log[-1] and str(empty) in log[-1]


def test_restore_assertions_are_read_before_anything_is_done(tmp_path: Path) -> None:
    for args, expected in ((["--max-age", "soon"], "--max-age: "), (["--expect-rows", "-3"], "--expect-rows: "),
                           (["--expect-at-least", "many"], "--expect-at-least: ")):
        run = run_drill(tmp_path, "restore", "ledger", "--test-mode", *args)
        assert run.code == 2 and expected in run.stderr, run.output
