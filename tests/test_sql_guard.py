"""drill.sql_guard reads plain SQL as psql does, and refuses what is not data for the restore target.

The oracle is psql itself: every planted file that the guard refuses makes the real psql run a shell
command (a marker file appears) when fed to it directly, so each refusal is a real threat; every tricky
file that the guard accepts runs under the real psql without creating the marker, so the guard did not
miss a meta-command that psql would run. Real pg_dump output (plain, --inserts, --create, --clean)
comes from a PostgreSQL server the test starts itself.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.stores.postgres.sql_guard import UnsafeBackup, check_file, filtered
from tests.live_servers import LivePostgres


@pytest.fixture(scope="module")
def pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.psql("CREATE ROLE userdb_user NOLOGIN")
        server.create_database("ledger")
        server.seed_ledger("ledger", rows=40)
        server.psql("ALTER TABLE accounts OWNER TO userdb_user; GRANT SELECT ON entries TO userdb_user; "
                    "CREATE FUNCTION atomic_two() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; "
                    "INSERT INTO entries (account_id, amount, note, booked_at) "
                    "VALUES (1, 1, E'back\\\\slash \\\\! and ''quote'' and $$dollar$$', now())", "ledger")
        yield server


def psql_file(pg: LivePostgres, path: Path, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    """The real psql, as drill runs it (-X, ON_ERROR_STOP), on `path`: no drill code involved."""
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": pg.SUPER_PASSWORD}
    return subprocess.run([str(pg.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                           str(pg.port), "-U", pg.SUPERUSER, "-d", database, "-f", str(path)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=path.parent)


def pg_dump(pg: LivePostgres, database: str, *args: str) -> bytes:
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": pg.SUPER_PASSWORD}
    return subprocess.run([str(pg.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.SUPERUSER,
                           "-d", database, *args], capture_output=True, check=True, env=env, timeout=120).stdout


# Each holds `\! touch MARKER` where psql reads it as data, not as a command.
ACCEPTED = {
    "in a string": "SELECT 'a \\! touch MARKER';\n",
    "in an E string after an escaped quote": "SELECT E'it\\'s \\! touch MARKER';\n",
    "in a dollar quote": "SELECT $x$ \\! touch MARKER $x$;\n",
    "in nested comments": "SELECT 1 /* outer /* inner */ \\! touch MARKER */;\n",
    "in a line comment": "SELECT 1; -- \\! touch MARKER\n",
    "in a quoted identifier": 'SELECT 1 AS "a\\! touch MARKER";\n',
    "in a string continued on the next line": "SELECT 'a'\n'\\! touch MARKER';\n",
    "in COPY data": "CREATE TEMP TABLE t (a text);\nCOPY t FROM stdin;\n\\! touch MARKER\nx\\ty\n\\.\n"
                    "SELECT count(*) FROM t;\n",
    "after a BEGIN ATOMIC body": "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
                                 "SELECT 2; END;\nSELECT '\\! touch MARKER';\n",
    "pg_dump's own meta-commands": "\\restrict abcDEF123\nSELECT 1;\n\\unrestrict abcDEF123\n\\connect postgres\n"
                                   "SELECT '\\! touch MARKER';\n",
}

# Each makes the real psql run `touch MARKER` (or write MARKER): the threat is real.
REFUSED_AND_RUN = {
    "a shell command": ("\\! touch MARKER\n", "a psql meta-command"),
    "an indented shell command": ("SELECT 1;\n   \\! touch MARKER\n", "inside a line of SQL"),
    "after a statement on its line": ("SELECT 'x'; \\! touch MARKER\n", "inside a line of SQL"),
    "after a dollar quote": ("SELECT $x$ a $x$; \\! touch MARKER\n", "inside a line of SQL"),
    "after a comment": ("SELECT 1 /* c */ \\! touch MARKER\n", "inside a line of SQL"),
    "after COPY data": ("CREATE TEMP TABLE t (a text);\nCOPY t FROM stdin;\nx\n\\.\n\\! touch MARKER\n",
                        "a psql meta-command"),
    "after the rest of a COPY line": ("CREATE TEMP TABLE t (a text);\nCOPY t FROM stdin; \\! touch MARKER\nx\n\\.\n",
                                      "inside a line of SQL"),
    "a string that ends on a backslash": ("SELECT 'a\\'; \\! touch MARKER\n", "odd number of backslashes"),
    "output to a file": ("\\o MARKER\nSELECT 1;\n", "a psql meta-command"),
    "a command behind another meta-command": ("\\echo hello \\! touch MARKER\n", "a psql meta-command"),
}

REFUSED = {
    "\\connect to another database": ("\\connect template1\nSELECT 1;\n", "\\connect to another database"),
    "CREATE DATABASE": ("CREATE DATABASE other;\n", "creates, changes or drops a database"),
    "DROP DATABASE": ("/* c */ DROP DATABASE IF EXISTS ledger;\n", "creates, changes or drops a database"),
    "ALTER ROLE": ("ALTER ROLE postgres PASSWORD 'x';\n", "on a role, which belongs to the whole server"),
    "CREATE TABLESPACE": ("CREATE TABLESPACE t LOCATION '/tmp';\n", "on a tablespace"),
    "ALTER SYSTEM": ("ALTER SYSTEM SET fsync = off;\n", "ALTER SYSTEM"),
    "LOAD": ("LOAD 'plpgsql';\n", "LOAD loads a library"),
    "GRANT ON DATABASE": ("GRANT CONNECT ON DATABASE ledger TO PUBLIC;\n", "on a database"),
    "COPY FROM PROGRAM": ("COPY t FROM PROGRAM 'id';\n", "not `COPY table FROM stdin`"),
    "COPY TO a file": ("COPY t TO '/tmp/x';\n", "not `COPY table FROM stdin`"),
    "COPY of a query from a table named stdin": ("COPY (SELECT a FROM stdin) TO STDOUT;\n\\! id\n\\.\n",
                                                "not `COPY table FROM stdin`"),
    "a NUL byte": ("SELECT 'abc\x00';\n';\n\\! touch MARKER\n", "a NUL byte"),
    "an unterminated string": ("SELECT 'abc;\n", "ends inside a quoted string"),
}


def _write(tmp_path: Path, name: str, text: str, gz: bool = False) -> Path:
    path = tmp_path / (name + (".sql.gz" if gz else ".sql"))
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_files_run_no_command_under_the_real_psql(pg: LivePostgres, tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, "accepted", ACCEPTED[case])
    check_file(path, False, "postgres")
    done = psql_file(pg, path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "MARKER").exists(), "psql ran a command the guard let through"


@pytest.mark.parametrize("case", list(REFUSED_AND_RUN))
def test_refused_files_would_run_a_command_under_the_real_psql(pg: LivePostgres, tmp_path: Path, case: str) -> None:
    text, why = REFUSED_AND_RUN[case]
    path = _write(tmp_path, "planted", text)
    with pytest.raises(UnsafeBackup, match="is refused before the target is touched") as caught:
        check_file(path, False, "postgres")
    assert why in str(caught.value)
    psql_file(pg, path)
    assert (tmp_path / "MARKER").exists(), "the planted file is no threat: psql did not run it"


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("gz", [False, True])
def test_statements_beyond_the_target_are_refused(tmp_path: Path, case: str, gz: bool) -> None:
    text, why = REFUSED[case]
    path = _write(tmp_path, "planted", text, gz)
    with pytest.raises(UnsafeBackup) as caught:
        check_file(path, gz, "ledger")
    assert why in str(caught.value) and "line " in str(caught.value)


def test_the_refusal_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "planted", "SELECT 1;\nSELECT 2;\n\n\\! env > leak.txt\n")
    with pytest.raises(UnsafeBackup, match=r"line 4: a psql meta-command .*'\\\\! env > leak.txt'"):
        check_file(path, False, "ledger")


def test_real_pg_dump_output_is_accepted_and_create_or_clean_dumps_are_refused(pg: LivePostgres,
                                                                              tmp_path: Path) -> None:
    for name, args in {"plain": [], "inserts": ["--inserts"], "clean": ["-c", "--if-exists"]}.items():
        path = tmp_path / f"{name}.sql"
        path.write_bytes(pg_dump(pg, "ledger", *args))
        summary = check_file(path, False, "ledger")
        assert summary.statements > 10
    assert check_file(tmp_path / "plain.sql", False, "ledger").copies == 2
    for name, args in {"create": ["-C"], "create-clean": ["-C", "-c"]}.items():
        path = tmp_path / f"{name}.sql"
        path.write_bytes(pg_dump(pg, "ledger", *args))
        with pytest.raises(UnsafeBackup, match="creates, changes or drops a database"):
            check_file(path, False, "ledger")


def test_skipping_owners_leaves_out_what_pg_restore_no_owner_no_privileges_would(pg: LivePostgres,
                                                                                 tmp_path: Path) -> None:
    path = tmp_path / "plain.sql"
    path.write_bytes(pg_dump(pg, "ledger") + b"ALTER TABLE public.entries RENAME COLUMN note TO owner;\n"
                                             b"ALTER TABLE public.entries RENAME COLUMN owner TO note;\n")
    kept = b"".join(filtered(path, False, "ledger", skip_owners=False))
    assert kept == path.read_bytes()  # nothing changes when owners are kept
    skipped = b"".join(filtered(path, False, "ledger", skip_owners=True))
    assert b"OWNER TO userdb_user" in kept and b"OWNER TO" not in skipped
    assert b"GRANT SELECT ON TABLE public.entries TO userdb_user" in kept and b"GRANT " not in skipped
    assert b"RENAME COLUMN owner TO note" in skipped  # not an owner statement
    assert check_file(path, False, "ledger", skip_owners=True).skipped >= 5
    # What is left restores on a server where userdb_user does not exist, and holds every row.
    with LivePostgres() as bare:
        bare.psql("CREATE DATABASE copy")
        target = tmp_path / "skipped.sql"
        target.write_bytes(skipped)
        done = psql_file(bare, target, "copy")
        assert done.returncode == 0, done.stderr
        assert bare.psql("SELECT count(*) FROM public.entries", "copy") == "41"
        original = tmp_path / "original.sql"
        original.write_bytes(kept)
        bare.psql("CREATE DATABASE copy2")
        failed = psql_file(bare, original, "copy2")
        assert failed.returncode != 0 and 'role "userdb_user" does not exist' in failed.stderr
