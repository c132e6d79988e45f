"""Restoring dumps safely against a live PostgreSQL started by the test (scram passwords, a non-superuser
owner, objects owned by a third role `userdb_user`):

- planted plain SQL files (`\\! env > file`, `\\connect` to the live database then DROP TABLE, a real
  `pg_dump -C -c` of another database) are refused before any target is touched: the live databases are
  unchanged (psql oracle), no file was written, no secret is anywhere;
- the client tools run with a minimal environment: wrappers around the real programs record it;
- dumps whose objects belong to a role the target server lacks restore into throwaway targets
  (`--test-mode`, a local store), with owners and grants left out; `restore_owners = "keep"` shows the
  failure they would otherwise hit.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import closed_port, run_drill
from tests.live_servers import LivePostgres, postgres_bin_dir, secrets_in
from tests.oracles import pg_state

SMTP_PASSWORD = "Smtp-Secret-pw-5Rv"
WEBHOOK_SECRET = "Webhook-Secret-8Qw"


@pytest.fixture(scope="module")
def nobody() -> Iterator[int]:
    """A free 127.0.0.1 port, held closed for the module: the webhook and SMTP server nobody listens on."""
    with closed_port() as port:
        yield port.port


@pytest.fixture(scope="module")
def pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.psql("CREATE ROLE userdb_user NOLOGIN; GRANT userdb_user TO ledger_owner")
        server.create_database("ledger")
        server.seed_ledger("ledger", rows=120)
        server.psql("ALTER TABLE accounts OWNER TO userdb_user; ALTER TABLE entries OWNER TO userdb_user; "
                    "GRANT SELECT ON balances TO userdb_user", "ledger")
        server.create_database("envdb")  # owned by ledger_owner throughout: it restores --into as that role
        server.seed_ledger("envdb", rows=30)
        server.create_database("otherdb")
        server.psql("CREATE TABLE keep_me (id int PRIMARY KEY); INSERT INTO keep_me SELECT generate_series(1, 7)",
                    "otherdb")
        yield server


def _project(root: Path, nobody: int, extra: str = "") -> Path:
    (root / "drill.toml").write_text(
        '[repository]\npath = "repo"\n\n[notify]\nwebhook_url_env = "DRILL_WEBHOOK"\nemail_to = ["ops@example.org"]\n'
        f'smtp_host = "127.0.0.1"\nsmtp_port = {nobody}\nsmtp_user = "drill"\nsmtp_password_env = "SMTP_PASSWORD"\n\n'
        '[stores.ledger]\nkind = "postgres"\nprovision = "live"\nurl_env = "LEDGER_URL"\n' + extra)
    return root


def _env(pg: LivePostgres, nobody: int, temp: Path | None = None) -> dict[str, str]:
    """The live URL and the notification secrets; with `temp`, drill's temp folder (TMPDIR), for a secret scan."""
    return {"LEDGER_URL": pg.url("ledger"), "SMTP_PASSWORD": SMTP_PASSWORD,
            "DRILL_WEBHOOK": f"http://127.0.0.1:{nobody}/hooks/{WEBHOOK_SECRET}",
            **({"TMPDIR": str(temp)} if temp else {})}


@pytest.fixture
def drill_tmp() -> Iterator[Path]:
    """drill's temp folder in a test (TMPDIR): its own, so that the secret scan covers the temp files drill made;
    one the server's account can enter too (a throwaway cluster runs as `postgres` when the tests are root)."""
    folder = Path(tempfile.mkdtemp(prefix="drilltest-tmp-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _pg_dump(pg: LivePostgres, database: str, *args: str) -> bytes:
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": pg.SUPER_PASSWORD}
    return subprocess.run([str(pg.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.SUPERUSER,
                           "-d", database, *args], capture_output=True, check=True, env=env, timeout=120).stdout


def _no_secret_anywhere(pg: LivePostgres, *roots: Path) -> None:
    secrets = (pg.OWNER_PASSWORD, pg.SUPER_PASSWORD, SMTP_PASSWORD, WEBHOOK_SECRET)
    for path in [p for root in roots for p in root.rglob("*") if p.is_file()]:
        assert not secrets_in(path.read_text(errors="replace"), *secrets), path


# Planted at the top of a real dump, before pg_dump's own \\restrict (after it psql itself would refuse them).
PLANTED = {
    "a shell command writing the environment": (b"\\! env > leak.txt\n", "a psql meta-command"),
    "\\connect to the live database, then DROP TABLE": (
        b"\\connect ledger\nDROP TABLE public.entries CASCADE;\n", "\\connect to another database"),
}


@pytest.mark.parametrize(("case", "how"), [("a shell command writing the environment", "--test-mode"),
                                           ("a shell command writing the environment", "--into"),
                                           ("\\connect to the live database, then DROP TABLE", "--into")])
def test_planted_sql_is_refused_before_anything_is_touched(pg: LivePostgres, nobody: int, tmp_path: Path,
                                                           drill_tmp: Path, case: str, how: str) -> None:
    planted, why = PLANTED[case]
    path = tmp_path / "dumps" / "ledger_20260101_000000.sql"
    path.parent.mkdir()
    path.write_bytes(planted + _pg_dump(pg, "ledger", "-Fp"))
    _project(tmp_path, nobody)
    before, databases = {db: pg_state(pg, db) for db in ("ledger", "otherdb")}, pg.databases()
    args = ["--test-mode"] if how == "--test-mode" else ["--into", "scratch"]
    run = run_drill(tmp_path, "restore", "ledger", "--from", str(path), *args, env=_env(pg, nobody, drill_tmp))
    assert run.code == 2, run.output
    assert "is refused before the target is touched" in run.stderr and why in run.stderr
    assert "restoring" not in run.output or how == "--test-mode"
    assert {db: pg_state(pg, db) for db in ("ledger", "otherdb")} == before  # psql's view: nothing changed
    assert pg.databases() == databases  # no scratch database was made
    assert not list(tmp_path.rglob("leak.txt")) and not Path("/tmp/leak.txt").exists()
    assert not list(drill_tmp.rglob("leak.txt"))
    _no_secret_anywhere(pg, tmp_path, drill_tmp)


def test_a_create_clean_dump_of_another_database_is_refused_into_a_scratch_database(
        pg: LivePostgres, nobody: int, tmp_path: Path, drill_tmp: Path) -> None:
    path = tmp_path / "otherdb_20260101_000000.sql.gz"
    path.write_bytes(gzip.compress(_pg_dump(pg, "otherdb", "-C", "-c")))
    _project(tmp_path, nobody)
    before, databases = pg_state(pg, "otherdb"), pg.databases()
    env = _env(pg, nobody, tmp_path)
    run = run_drill(tmp_path, "restore", "ledger", "--from", str(path), "--into", "scratch", env=env)
    assert run.code == 2, run.output
    assert "creates, changes or drops a database" in run.stderr and "make the dump without -C" in run.stderr
    assert pg_state(pg, "otherdb") == before and pg.databases() == databases
    assert not secrets_in(run.output, pg.OWNER_PASSWORD, pg.SUPER_PASSWORD, SMTP_PASSWORD, WEBHOOK_SECRET)
    _no_secret_anywhere(pg, tmp_path, drill_tmp)  # the project (its repository, log, reports) and drill's temp


def test_a_drill_refuses_a_planted_dump_before_its_local_store_is_touched(pg: LivePostgres, tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "ledger_20260101_000000.sql.gz").write_bytes(
        gzip.compress(_pg_dump(pg, "ledger") + b"\\! env > leak.txt\n"))
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "nightly.feature").write_text('''Feature: nightly
  Scenario: the nightly dump restores
    Given the PostgreSQL store "ledger"
    And the latest backup of "ledger" in "dumps/ledger_*.sql.gz"
    When "ledger" is restored from its latest backup
    Then "ledger" holds 170 rows
''')
    run = run_drill(tmp_path, "run", env={"SMTP_PASSWORD": SMTP_PASSWORD})
    scenario = run.scenario("the nightly dump restores")
    assert scenario["status"] == "failed"
    message = scenario["errors"][0]["message"]
    assert "is refused before the target is touched: line " in message and "a psql meta-command" in message
    assert [p["name"] for p in scenario["phases"] if p["status"] == "failed"] == ["restore"]
    assert not list(tmp_path.rglob("leak.txt"))


# -- owners and grants on throwaway targets ----------------------------------------------------------------


def test_dumps_owned_by_another_role_restore_in_test_mode(pg: LivePostgres, nobody: int, tmp_path: Path) -> None:
    _project(tmp_path, nobody)
    rows = pg.psql("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM entries)", "ledger")
    assert pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'entries'", "ledger") == "userdb_user"
    made = run_drill(tmp_path, "backup", "ledger", env=_env(pg, nobody))
    assert made.code == 0, made.output
    custom = run_drill(tmp_path, "restore", "ledger", "--test-mode", env=_env(pg, nobody))
    assert custom.code == 0, custom.output
    assert f"{rows} rows, matching the fingerprint taken with the backup" in custom.stdout
    plain = tmp_path / "ledger_20260101_000000.sql.gz"
    plain.write_bytes(gzip.compress(_pg_dump(pg, "ledger")))
    sql = run_drill(tmp_path, "restore", "ledger", "--from", str(plain), "--test-mode",
                    env=_env(pg, nobody))
    assert sql.code == 0, sql.output
    assert f"{rows} rows (no fingerprint recorded" in sql.stdout
    # Keeping the owners on a throwaway server is what failed before: the role is not there.
    _project(tmp_path, nobody, 'restore_owners = "keep"\n')
    kept = run_drill(tmp_path, "restore", "ledger", "--test-mode", env=_env(pg, nobody))
    assert kept.code == 1 and 'role "userdb_user" does not exist' in kept.stderr, kept.output


def test_a_throwaway_restore_of_a_dump_owned_by_another_role_passes(pg: LivePostgres, tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "ledger_20260101_000000.sql.gz").write_bytes(gzip.compress(_pg_dump(pg, "ledger")))
    (dumps / "ledger_20260101_000000.dump").write_bytes(_pg_dump(pg, "ledger", "-Fc"))
    rows = int(pg.psql("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM entries)", "ledger"))
    entries = pg.psql("SELECT count(*) FROM entries WHERE note IS NULL", "ledger")
    (tmp_path / "features").mkdir()
    scenarios = "".join(f'''
  Scenario: the nightly {fmt} restores
    Given the PostgreSQL store "ledger"
    And the latest backup of "ledger" in "dumps/ledger_*.{fmt}"
    When "ledger" is restored from its latest backup
    Then "ledger" holds {rows} rows
    And the query "SELECT count(*) FROM entries WHERE note IS NULL" on "ledger" returns "{entries}"
''' for fmt in ("sql.gz", "dump"))
    (tmp_path / "features" / "nightly.feature").write_text("Feature: nightly\n" + scenarios)
    run = run_drill(tmp_path, "run")
    assert run.code == 0, run.output


# -- the tools' environment ------------------------------------------------------------------------------------


@pytest.fixture
def pgbin() -> Iterator[Path]:
    """A folder the server's account can read too (initdb and pg_ctl run as `postgres` when the tests are root)."""
    folder = Path(tempfile.mkdtemp(prefix="drilltest-pgbin-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _wrapped_tools(wrapped: Path, root: Path) -> Path:
    """A bin folder where pg_dump, pg_restore and psql are the real programs behind a line that records their
    environment (into `root`); the server programs are links to the real ones."""
    real = postgres_bin_dir()
    for program in real.iterdir():
        if program.name in ("pg_dump", "pg_restore", "psql"):
            script = wrapped / program.name
            script.write_text(f'#!/bin/sh\nenv > "{root}/env.{program.name}.$$"\nexec "{program}" "$@"\n')
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        else:
            (wrapped / program.name).symlink_to(program)
    return wrapped


def test_the_tools_run_with_a_minimal_environment(pg: LivePostgres, nobody: int, tmp_path: Path, pgbin: Path) -> None:
    _project(tmp_path, nobody)
    env = {**_env(pg, nobody), "LEDGER_URL": pg.url("envdb"),
           "DRILL_PG_BIN": str(_wrapped_tools(pgbin, tmp_path)),
           "AWS_SECRET_ACCESS_KEY": "Aws-Secret-3Zp"}
    plain = tmp_path / "ledger_20260101_000000.sql"
    plain.write_bytes(_pg_dump(pg, "envdb"))
    for args in (["backup", "ledger"], ["restore", "ledger", "--into", "ledger_copy"],
                 ["restore", "ledger", "--from", str(plain), "--test-mode"]):
        run = run_drill(tmp_path, *args, env=env)
        assert run.code == 0, run.output
    recorded = {path.name.split(".")[1]: path.read_text() for path in tmp_path.glob("env.*")}
    assert set(recorded) == {"pg_dump", "pg_restore", "psql"}, recorded.keys()
    for tool, text in recorded.items():
        names = {line.partition("=")[0] for line in text.splitlines()}
        assert not names & {"LEDGER_URL", "SMTP_PASSWORD", "DRILL_WEBHOOK", "AWS_SECRET_ACCESS_KEY", "DRILL_PG_BIN"}, \
            (tool, names)
        assert not secrets_in(text, SMTP_PASSWORD, WEBHOOK_SECRET, "Aws-Secret-3Zp"), tool
        assert "PATH" in names
    live_tools = [t for t in recorded.values() if f"PGPASSWORD={pg.OWNER_PASSWORD}" in t]
    assert live_tools, "the live server's tools get the password they need through PGPASSWORD"
    pg.psql("DROP DATABASE ledger_copy")
