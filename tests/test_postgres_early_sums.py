"""The content sums taken while `pg_restore -j` runs (drill/stores/postgres/early_sums.py) stand in for reading a
table again only when that is exact (issue 18's last PostgreSQL lever).

The server is started here, outside drill, with its own roles and passwords (tests/live_servers.py); the test reads
its data with psql (tests/oracles.py), never through drill. To see whether the fingerprint used a sum or read the
table, a test replaces the sums with false ones ("poisoned"): a fingerprint that shows the false count used it, one
that shows psql's count read the table. Every fallback below is shown both ways: the sum is used when nothing
changed, and not used once something did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.fingerprint import Fingerprint, compare
from drill.provision.factory import provision
from drill.stores.postgres import PostgresStore
from drill.stores.postgres.early_sums import EarlySums, EarlyTableSums, RestorePlan
from tests.live_servers import LivePostgres
from tests.oracles import pg_tables

POISON = ("hash_record_extended", 999_999, "12345")  # a sum no table here has: its count shows it was used

SCHEMA = '''
SET ROLE {owner};
CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 3000) g;
CREATE TABLE entries (id bigint PRIMARY KEY, account int REFERENCES accounts, amount numeric(12, 2), tags jsonb);
INSERT INTO entries SELECT g, 1 + g % 3000, g / 7.0, jsonb_build_object('n', g) FROM generate_series(1, 20000) g;
CREATE INDEX entries_by_account ON entries (account);
CREATE TABLE shapes (id int, doc json, at point);
INSERT INTO shapes SELECT g, json_build_object('g', g), point(g, g) FROM generate_series(1, 500) g;
CREATE TABLE "odd name ""q""" (x int);
INSERT INTO "odd name ""q""" SELECT generate_series(1, 40);
CREATE TABLE parent (a int);
CREATE TABLE child (b text) INHERITS (parent);
INSERT INTO parent SELECT generate_series(1, 30);
INSERT INTO child SELECT g, 'c' FROM generate_series(1, 20) g;
CREATE TABLE measures (at int, v int) PARTITION BY RANGE (at);
CREATE TABLE measures_low PARTITION OF measures FOR VALUES FROM (0) TO (100);
CREATE TABLE measures_high PARTITION OF measures FOR VALUES FROM (100) TO (1000);
INSERT INTO measures SELECT g, g * 2 FROM generate_series(0, 999) g;
CREATE SCHEMA north;
CREATE SCHEMA south;
CREATE TABLE north.depots (id int);
CREATE TABLE south.depots (id int);
INSERT INTO north.depots SELECT generate_series(1, 11);
INSERT INTO south.depots SELECT generate_series(1, 12);
CREATE TABLE guarded (id int, owner_name text);
INSERT INTO guarded SELECT g, 'user' || g FROM generate_series(1, 60) g;
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE UNLOGGED TABLE scratchpad (id int);
INSERT INTO scratchpad SELECT generate_series(1, 7);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN good_mood AS mood CHECK (VALUE <> 'sad');
CREATE TYPE feeling AS (m mood, n int);
CREATE TABLE moods (id int, m mood, ms mood[], g good_mood, f feeling, t regclass);
INSERT INTO moods SELECT g, 'ok', ARRAY['sad'::mood, 'happy'], 'happy', ROW('sad', g)::feeling, 'accounts'::regclass
FROM generate_series(1, 50) g;
'''

# Summed while pg_restore ran: plain tables whose name is the only one of its kind.
SUMMED = {"public.accounts", "public.entries", "public.shapes", 'public.odd name "q"', "public.child",
          "public.guarded", "public.moods"}
# Read by the fingerprint itself: a parent (FROM parent reads its children too), partitions, and names two schemas
# share (pg_restore's line names the table, not its schema).
NOT_SUMMED = {"public.parent", "public.measures_low", "public.measures_high", "north.depots", "south.depots",
              "public.scratchpad"}  # and an unlogged table, which a crash recovery empties without a commit


@pytest.fixture(scope="module")
def pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.create_database("app")
        server.psql(SCHEMA.format(owner=LivePostgres.OWNER), "app")
        yield server


@contextmanager
def _live(monkeypatch: pytest.MonkeyPatch, name: str, url: str) -> Iterator[PostgresStore]:
    """drill's live store `name` at `url` (destructive, pg_restore -j 2), every loaded table summed whatever the
    timing: on these small tables pg_restore may end before a core was ever idle long enough (that timing is the
    bench's business, bench/run.py; what a sum may stand for is this file's)."""
    monkeypatch.setattr(EarlyTableSums, "LEAVE_UNSUMMED_TO_FINGERPRINT", False)
    monkeypatch.setenv(f"{name.upper()}_URL", url)
    config = StoreConfig(name=name, kind="postgres", provision="live", url_env=f"{name.upper()}_URL",
                         destructive=True, restore_jobs=2)
    cleanup = CleanupStack()
    try:
        store = provision(config, cleanup)
        assert isinstance(store, PostgresStore)
        yield store
    finally:
        cleanup.run()


@pytest.fixture
def live_store(pg: LivePostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresStore]:
    with _live(monkeypatch, "app", pg.url("app")) as store:
        yield store


def _oids(pg: LivePostgres, database: str) -> dict[str, int]:
    """Each user table's oid by its schema.name as the fingerprint names it, read by the server's own psql."""
    rows = pg.psql("SELECT n.nspname || '.' || c.relname, c.oid FROM pg_class c "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                   "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
                   database)
    return {name: int(oid) for name, oid in (line.split("|") for line in rows.splitlines())}


def _restored(store: PostgresStore, tmp_path: Path, into: str) -> PostgresStore:
    artifact = store.backup(tmp_path)
    copy = store.restore(artifact, into)
    assert isinstance(copy, PostgresStore)
    return copy


def _counts(printed: Fingerprint) -> dict[str, int]:
    return {name: part.count for name, part in printed.parts.items()}


def _poisoned(sums: EarlySums) -> EarlySums:
    return replace(sums, sums=dict.fromkeys(sums.sums, POISON))


def test_the_tables_summed_during_the_restore_are_exactly_the_plain_ones_and_equal_a_full_reading(
        pg: LivePostgres, live_store: PostgresStore, tmp_path: Path) -> None:
    copy = _restored(live_store, tmp_path, "app_copy_equal")
    assert copy.early_sums is not None
    oids = _oids(pg, "app_copy_equal")
    assert set(copy.early_sums.sums) == {oids[name] for name in SUMMED}
    assert not set(copy.early_sums.sums) & {oids[name] for name in NOT_SUMMED}

    with_early = copy.fingerprint()  # the sums stand in (nothing was written since)
    assert copy.early_sums is None  # used once
    read_whole = copy.fingerprint()
    assert compare(read_whole, with_early) == []
    assert compare(live_store.fingerprint(), with_early) == []
    # The tables psql reads in the copy and in the original; a parent counts its children's rows (FROM parent).
    assert pg_tables(pg, "app_copy_equal") == pg_tables(pg, "app")
    psql = {name: count for name, (count, _) in pg_tables(pg, "app_copy_equal").items()}
    assert with_early.parts["public.entries"].count == psql["public.entries"] == 20000
    assert with_early.parts["public.parent"].count == psql["public.parent"] == 30 + psql["public.child"] == 50
    # Enum labels and regclass values get new OIDs in a new database: summed by their text, equal to the backup.
    assert with_early.parts["public.moods"].schema["content hash"] == "hashtextextended(row text)"


def test_a_sum_stands_in_only_while_nothing_has_committed_since_the_restore(
        pg: LivePostgres, live_store: PostgresStore, tmp_path: Path) -> None:
    copy = _restored(live_store, tmp_path, "app_copy_poison")
    assert copy.early_sums is not None
    copy.early_sums = _poisoned(copy.early_sums)
    counts = _counts(copy.fingerprint())
    # Nothing committed: the (poisoned) sums were used for the plain tables, except the one the restore put under
    # row-level security after its data was loaded; every other table was read.
    used = {name for name, count in counts.items() if count == POISON[1]}
    assert used == SUMMED - {"public.guarded"}
    assert counts["public.guarded"] == 60 and counts["north.depots"] == 11 and counts["south.depots"] == 12
    assert counts["public.parent"] == 50 and counts["public.measures_low"] == 100

    # One row written anywhere on the server (here: another database) and the sums no longer stand in.
    copy2 = _restored(live_store, tmp_path, "app_copy_write")
    assert copy2.early_sums is not None
    copy2.early_sums = _poisoned(copy2.early_sums)
    pg.psql("CREATE TABLE IF NOT EXISTS elsewhere (x int); INSERT INTO elsewhere VALUES (1)", "postgres")
    counts = _counts(copy2.fingerprint())
    assert POISON[1] not in counts.values()
    assert counts["public.entries"] == 20000 and counts["public.accounts"] == 3000


@pytest.mark.parametrize("table, change", [("entries", "UPDATE entries SET amount = amount + 1 WHERE id = 7"),
                                           ("moods", "UPDATE moods SET m = 'happy' WHERE id = 3")])
def test_a_row_changed_after_the_restore_is_caught(pg: LivePostgres, live_store: PostgresStore, tmp_path: Path,
                                                   table: str, change: str) -> None:
    """The fault a drill must catch, planted by psql in the copy: the verification reads the table again."""
    copy = _restored(live_store, tmp_path, f"app_copy_fault_{table}")
    assert copy.early_sums is not None and copy.early_sums.sums
    pg.psql(change, f"app_copy_fault_{table}")
    differences = compare(live_store.fingerprint(), copy.fingerprint())
    assert [d.part for d in differences] == [f"public.{table}"], differences


def test_an_in_place_restore_of_a_live_store_takes_no_early_sums(pg: LivePostgres, live_store: PostgresStore,
                                                                 tmp_path: Path) -> None:
    """Its clients may reconnect while it is restored: the fingerprint after it reads every table."""
    before = pg_tables(pg, "app")
    artifact = live_store.backup(tmp_path)
    restored = live_store.restore(artifact)
    assert restored is live_store and live_store.early_sums is None
    assert pg_tables(pg, "app") == before


EVENT_LOG = """
CREATE TABLE ddl_log (at timestamptz DEFAULT now(), tag text);
INSERT INTO ddl_log (tag) SELECT 'old ' || g FROM generate_series(1, 5) g;
CREATE TABLE bulk (id int);
INSERT INTO bulk SELECT generate_series(1, 100000);
CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.ddl_log (tag) VALUES (tg_tag); END $$;
CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl();
CREATE MATERIALIZED VIEW slow AS SELECT count(*) AS n, (SELECT 1 FROM pg_sleep(0.5)) AS pause FROM bulk;
CREATE MATERIALIZED VIEW after_slow AS SELECT n FROM slow;
"""


def test_an_archive_whose_event_trigger_writes_during_the_restore_gets_no_early_sums(
        pg: LivePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review's case: pg_restore's last pass creates the event trigger beside the first materialized view's
    refresh (half a second); the second view's refresh waits for the first and fires the trigger: ddl_log gains a
    row after its data was loaded. A sum taken before would stand for the backup's
    ddl_log and pass; with no early sums the fingerprint reads the row, as psql does."""
    pg.psql("CREATE DATABASE audited", "postgres")
    pg.psql(EVENT_LOG, "audited")
    # Event triggers need a superuser.
    with _live(monkeypatch, "audited", pg.url("audited", owner=False)) as store:
        copy = _restored(store, tmp_path, "audited_copy")
        assert copy.early_sums is None
        source_rows = int(pg.psql("SELECT count(*) FROM ddl_log", "audited"))
        restored_rows = int(pg.psql("SELECT count(*) FROM ddl_log", "audited_copy"))
        assert restored_rows > source_rows, (restored_rows, source_rows)  # written while pg_restore ran (psql)
        printed = copy.fingerprint()
        assert printed.parts["public.ddl_log"].count == restored_rows
        assert "public.ddl_log" in [d.part for d in compare(store.fingerprint(), printed)]


def test_restore_plan_reads_the_archives_table_of_contents() -> None:
    toc = """;
; Archive created at 2026-11-27 22:00:00 UTC
3376; 0 16409 TABLE DATA public chi postgres
3372; 0 16386 TABLE DATA we ird ta ble postgres
3225; 2606 16392 CONSTRAINT public t1 t1_pkey postgres
3229; 1259 16405 INDEX public finished item 3225 TABLE DATA t1 postgres
"""
    plan = RestorePlan.of(toc)
    assert plan == RestorePlan(frozenset({3376, 3372}), triggers=False)
    assert RestorePlan.of(toc + "3230; 2620 16410 TRIGGER public t1 audit postgres\n") == \
        RestorePlan(frozenset({3376, 3372}), triggers=True)
    assert RestorePlan.of(toc + "3390; 3466 16420 EVENT TRIGGER - audit_ddl postgres\n") is None
    assert RestorePlan.of(toc + "3391; 0 16421 MATERIALIZED VIEW DATA public slow postgres\n") is None


def test_only_a_finished_table_data_item_of_the_archive_counts_as_loaded(pg: LivePostgres) -> None:
    """A name holding "finished item N TABLE DATA x" does not fake a loaded table; repeated program names (two
    processes' writes interleaved) do not hide a real one."""
    from drill.stores.postgres.binaries import for_local_cluster
    from drill.stores.postgres.server import PgServer

    server = PgServer(host="127.0.0.1", port=pg.port, user=LivePostgres.SUPERUSER,
                      password=LivePostgres.SUPER_PASSWORD, tools=for_local_cluster())
    summer = EarlyTableSums(server, "app", jobs=0, plan=RestorePlan(frozenset({1, 2}), triggers=False))
    try:
        summer.line("pg_restore: finished item 9 INDEX i finished item 1 TABLE DATA accounts\n")
        summer.line("pg_restore: finished item 3 TABLE DATA shapes\n")  # not a TABLE DATA item of the archive
        summer.line("pg_restore: pg_restore: finished item 2 TABLE DATA odd name\n")
        summer.line("launching item 4 INDEX x\n")
        assert summer._loaded == ["odd name"]
        assert summer._running == 1
    finally:
        summer.abandon()
