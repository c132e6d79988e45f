"""Point-in-time recovery of local PostgreSQL clusters from their WAL archive, with writes going on until the
disaster: the restored store holds every marker written before the target time and none after it, and the
measured RPO is within one marker interval of the truth. Real clusters, real pg_basebackup and WAL replay.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import StoreError
from drill.provision.postgres import provision_local
from drill.stores.postgres import PostgresStore
from tests.conftest import REPO, assert_rpo_between, run_drill

INTERVAL = 0.2

FEATURE = f'''Feature: pitr
  Scenario: just before the disaster
    Given the PostgreSQL store "userdb" archiving its WAL
    And "userdb" is seeded with 2000 rows
    And writes to "userdb" are recorded every {INTERVAL} seconds
    And a base backup of "userdb" is taken
    And 3 seconds pass
    When "userdb" is lost
    And "userdb" is restored to the point in time just before the disaster
    Then "userdb" matches its state at the backup
    And "userdb" holds every marker written before the point in time and none after it

  Scenario: two seconds before the disaster
    Given the PostgreSQL store "userdb" archiving its WAL
    And "userdb" is seeded with 2000 rows
    And a base backup of "userdb" is taken
    And writes to "userdb" are recorded every {INTERVAL} seconds
    And 4 seconds pass
    When "userdb" is lost
    And "userdb" is restored to the point in time 2 seconds before the disaster
    Then "userdb" holds every marker written before the point in time and none after it
    And "userdb" holds 2000 rows

  Scenario: a missing marker is caught
    Given the PostgreSQL store "userdb" archiving its WAL
    And writes to "userdb" are recorded every {INTERVAL} seconds
    And a base backup of "userdb" is taken
    And 2 seconds pass
    When "userdb" is lost
    And "userdb" is restored to the point in time just before the disaster
    And SQL is run on "userdb":
      """
      DELETE FROM drill_markers WHERE seq = 3;
      """
    Then "userdb" holds every marker written before the point in time and none after it
'''


@pytest.fixture(scope="module")
def pitr_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("pitr")
    (root / "features").mkdir()
    (root / "features" / "pitr.feature").write_text(FEATURE, encoding="utf-8")
    return run_drill(root, "run", timeout=600)


def test_recovery_just_before_the_disaster_keeps_every_marker_and_rpo_is_one_interval(pitr_run: Any) -> None:
    scenario = pitr_run.scenario("just before the disaster")
    assert scenario["status"] == "passed", pitr_run.output
    evidence = scenario["evidence"]["pitr"]["userdb"]
    assert evidence["how"] == "recovery_target_lsn (exclusive)" and evidence["target_lsn"]
    assert evidence["markers_before_target"] >= 10 and evidence["markers_after_target"] == 0
    assert evidence["missing_before"] == [] and evidence["present_after"] == []
    markers = scenario["evidence"]["markers"]["userdb"]
    # The truth: every marker written before the disaster was recovered, so the loss is what was written
    # after the last marker, less than one interval.
    assert markers["newest_surviving_seq"] == markers["last_seq"], markers
    assert markers["method"] == "markers"
    assert_rpo_between(pitr_run, scenario, 0.0, INTERVAL)
    assert scenario["evidence"]["fingerprints"]["userdb"]["differences"] == []
    [base] = [b for b in scenario["evidence"]["backups"] if b["format"] == "pg_basebackup"]
    assert base["sha256"] and base["size"] > 1_000_000


def test_recovery_to_an_earlier_time_drops_exactly_the_later_markers(pitr_run: Any) -> None:
    scenario = pitr_run.scenario("two seconds before the disaster")
    assert scenario["status"] == "passed", pitr_run.output
    evidence = scenario["evidence"]["pitr"]["userdb"]
    assert evidence["how"] == "recovery_target_time"
    assert evidence["markers_before_target"] >= 5 and evidence["markers_after_target"] >= 5
    assert evidence["present_after"] == [] and evidence["missing_before"] == []
    assert evidence["markers_present"] in (evidence["markers_before_target"], evidence["markers_before_target"] - 1)
    # The truth is 2 s (the target is 2 s before the disaster); measured from the markers, within one interval.
    assert_rpo_between(pitr_run, scenario, 2.0, INTERVAL)


def test_the_marker_check_names_a_missing_marker(pitr_run: Any) -> None:
    scenario = pitr_run.scenario("a missing marker is caught")
    assert scenario["status"] == "failed"
    messages = " ".join(e["message"] for e in scenario["errors"])
    assert "1 marker(s) written before the point in time are missing (seq 3)" in messages, messages


def test_a_store_without_wal_archiving_says_how_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "f.feature").write_text('''Feature: f
  Scenario: no archive
    Given the PostgreSQL store "userdb"
    And a base backup of "userdb" is taken
''', encoding="utf-8")
    run = run_drill(tmp_path, "run")
    messages = " ".join(e["message"] for e in run.scenario("no archive")["errors"])
    assert "set `pitr = true` under [stores.userdb]" in messages


def test_pitr_in_drill_toml_is_only_for_local_postgres(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "f.feature").write_text('Feature: f\n  Scenario: s\n    Given the Redis store "c"\n')
    (tmp_path / "drill.toml").write_text('[stores.c]\nkind = "redis"\npitr = true\n')
    run = run_drill(tmp_path, "run")
    assert run.code != 0
    assert "drill.toml:3" in run.output and "local PostgreSQL stores only" in run.output


@pytest.fixture
def pitr_store() -> Any:
    cleanup = CleanupStack()
    try:
        store = provision_local(StoreConfig("userdb", "postgres", pitr=True), cleanup, lambda _: None)
        assert isinstance(store, PostgresStore)
        yield store
    finally:
        cleanup.run()


def test_recovery_to_an_explicit_timestamp(pitr_store: PostgresStore) -> None:
    archive = pitr_store.pitr
    pitr_store.execute_sql("CREATE TABLE t (n int, at timestamptz DEFAULT clock_timestamp())")
    base = archive.base_backup(pitr_store)
    for n in range(1, 4):
        pitr_store.execute_sql(f"INSERT INTO t (n) VALUES ({n})")
        time.sleep(0.3)  # three commits 0.3 s apart: the timestamp below falls between the 2nd and the 3rd
    with pitr_store.server.connect(pitr_store.database) as conn:
        rows = conn.execute("SELECT n, extract(epoch FROM at) FROM t ORDER BY n").fetchall()
    middle = (float(rows[1][1]) + float(rows[2][1])) / 2
    stamp = dt.datetime.fromtimestamp(middle, dt.UTC).isoformat().replace("+00:00", "Z")
    from drill.pitr import parse_point_in_time

    archive.recover_to(base, parse_point_in_time(stamp))
    with pitr_store.server.connect(pitr_store.database) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n").fetchall()] == [1, 2]


def test_a_time_before_the_base_backup_is_refused_before_anything_is_touched(pitr_store: PostgresStore) -> None:
    pitr_store.execute_sql("CREATE TABLE t (n int)")
    base = pitr_store.pitr.base_backup(pitr_store)
    with pytest.raises(StoreError, match="is before the base backup"):
        pitr_store.pitr.recover_to(base, base.consistent_at - 60)
    assert pitr_store.count("t") == 0  # the server still runs, untouched


def test_a_failed_recovery_puts_the_data_directory_back(pitr_store: PostgresStore) -> None:
    pitr_store.execute_sql("CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
    base = pitr_store.pitr.base_backup(pitr_store)
    pitr_store.execute_sql("INSERT INTO t VALUES (2)")
    # A target far in the future is never reached: PostgreSQL refuses to promote, drill puts the data back.
    with pytest.raises(StoreError, match="point-in-time recovery failed and the data directory was put back"):
        pitr_store.pitr.recover_to(base, time.time() + 3600)
    assert pitr_store.count("t") == 2


def test_iso_timestamps_need_a_zone() -> None:
    from drill.pitr import parse_point_in_time

    assert parse_point_in_time("2026-01-01T10:00:00Z") == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC).timestamp()
    with pytest.raises(StoreError, match="has no time zone"):
        parse_point_in_time("2026-01-01T10:00:00")
    with pytest.raises(StoreError, match="is not a point in time"):
        parse_point_in_time("yesterday")


def test_the_bundled_pitr_feature_passes(tmp_path: Path) -> None:
    run = run_drill(tmp_path, "run", str(REPO / "features" / "pitr.feature"), timeout=600)
    assert run.code == 0, run.output
