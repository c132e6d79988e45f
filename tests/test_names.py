"""Names are identifiers, never connection strings (DESIGN, invariant 3).

libpq reads a database name holding `=` as a whole connection string: `--into 'host=evil port=5432
dbname=x'` used to send the live password to that host. Here the "evil" host is a TCP listener the test
runs itself; it counts every connection attempt. The live server is a PostgreSQL started by the test,
outside drill, with password login and a non-superuser owner.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.errors import ConfigError
from drill.names import name_problem
from drill.provision.pg_binaries import PgBinaries
from drill.stores.postgres import PgServer
from drill.stores.postgres.database import check_postgres_database
from tests.conftest import run_drill
from tests.live_servers import LivePostgres
from tests.oracles import pg_state


class Listener:
    """A TCP port on 127.0.0.1 that accepts and counts connections (the host a bad name would send us to)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def listener() -> Iterator[Listener]:
    found = Listener()
    try:
        yield found
    finally:
        found.close()


def test_the_listener_sees_a_connection() -> None:
    """The oracle bites: a real connection attempt to the listener is counted."""
    with listener() as evil:
        with socket.create_connection(("127.0.0.1", evil.port), timeout=5):
            pass
        deadline = threading.Event()
        for _ in range(50):
            if evil.accepted:
                break
            deadline.wait(0.05)
        assert evil.accepted == 1


@pytest.mark.parametrize("name", ["host=evil port=5432 dbname=x", "postgresql://evil/x", "postgres:x", "-dx",
                                  "a/b", "..", " x", "a\nb", ""])
def test_names_that_are_not_identifiers_are_refused(name: str) -> None:
    assert name_problem(name) is not None
    with pytest.raises(ConfigError, match="is refused"):
        check_postgres_database(name, "restore target")


def test_plain_names_pass_and_long_postgres_names_are_refused() -> None:
    for name in ("userdb_restored", "ledger-2026.01", "Ledger Copy"):
        assert name_problem(name) is None
    with pytest.raises(ConfigError, match="at most 63 bytes"):
        check_postgres_database("x" * 64, "restore target")


def test_the_tools_get_the_name_only_as_a_quoted_dbname() -> None:
    server = PgServer(host="127.0.0.1", port=5432, user="owner", password="pw", tools=PgBinaries(Path("/"), "15",
                                                                                               "system"))
    args = server.tool_args("host=evil port=1 dbname=x")
    assert args[0] == "-d" and len(args) == 2
    assert "dbname='host=evil port=1 dbname=x'" in args[1] and "host=127.0.0.1" in args[1]
    assert "pw" not in args[1]


def test_a_conninfo_into_is_refused_with_exit_2_and_no_connection_is_made(tmp_path: Path) -> None:
    with LivePostgres() as pg, listener() as evil:
        pg.create_database("ledger")
        pg.seed_ledger("ledger", rows=50)
        (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\n\n[stores.ledger]\nkind = "postgres"\n'
                                             'provision = "live"\nurl_env = "LEDGER_URL"\n')
        env = {"LEDGER_URL": pg.url("ledger")}
        made = run_drill(tmp_path, "backup", "ledger", env=env)
        assert made.code == 0, made.output  # a real backup: without the check, the restore would go ahead
        before, databases = pg_state(pg, "ledger"), pg.databases()
        for bad in (f"host=127.0.0.1 port={evil.port} dbname=x", f"postgresql://127.0.0.1:{evil.port}/x"):
            refused = run_drill(tmp_path, "restore", "ledger", "--into", bad, env=env)
            assert refused.code == 2, refused.output
            assert "restore target (--into)" in refused.stderr and "is refused" in refused.stderr
            assert "restoring" not in refused.output
        # The same name in a feature is refused by `drill run` before anything starts.
        (tmp_path / "features").mkdir()
        (tmp_path / "features" / "into.feature").write_text(f'''Feature: into
  Scenario: a restore into a connection string
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is restored from its latest backup into "host=127.0.0.1 port={evil.port} dbname=x"
''')
        run = run_drill(tmp_path, "run", env=env)
        assert run.code == 2 and run.results is None, run.output
        assert "into.feature:5: restore target 'host=127.0.0.1" in run.stderr
        assert evil.accepted == 0  # nothing ever connected to the host the name pointed at
        assert pg.databases() == databases and pg_state(pg, "ledger") == before


def _connections_so_far(evil: Listener) -> int:
    """Connections the listener got before now: the test's own last one is accepted after every earlier attempt
    (accept() takes the backlog in order), so waiting for it, not a sleep, drains whatever drill may have sent."""
    before = evil.accepted
    with socket.create_connection(("127.0.0.1", evil.port), timeout=5):
        pass
    seen = threading.Event()
    while evil.accepted <= before:
        seen.wait(0.02)
    return evil.accepted - 1


@pytest.mark.parametrize("where", ["feature into", "drill.toml database", "URL database", "option-like URL database"])
def test_drill_check_refuses_a_database_name_that_is_not_an_identifier(tmp_path: Path, where: str) -> None:
    """`drill check` refuses a conninfo-style or option-like database name wherever it is written: exit 2, the
    file and line named, nothing run, and no connection to the host it names (nor to the live one: here both
    are the test's listener, so any connection attempt at all is counted)."""
    with listener() as evil:
        conninfo = f"host=127.0.0.1 port={evil.port} dbname=x"
        toml = '[stores.ledger]\nkind = "postgres"\nprovision = "live"\nurl_env = "LEDGER_URL"\ndestructive = true\n'
        database = "ledger"
        into = ""
        if where == "drill.toml database":
            toml += f'database = "{conninfo}"\n'
        elif where == "URL database":
            database = conninfo.replace(" ", "%20")
        elif where == "option-like URL database":
            database = f"-h127.0.0.1%20-p{evil.port}"
        else:
            into = f'    And "ledger" is restored from its latest backup into "{conninfo}"\n'
        (tmp_path / "drill.toml").write_text(toml)
        (tmp_path / "features").mkdir()
        (tmp_path / "features" / "names.feature").write_text(f'''Feature: names
  Scenario: a database name
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is lost
{into}''')
        env = {"LEDGER_URL": f"postgresql://postgres:S3cret-pw@127.0.0.1:{evil.port}/{database}"}
        good = run_drill(tmp_path, "check", env={**env, "LEDGER_URL": env["LEDGER_URL"].rsplit("/", 1)[0] + "/ledger"})
        assert good.code == (2 if where in ("feature into", "drill.toml database") else 0), good.output
        checked = run_drill(tmp_path, "check", env=env)
        assert checked.code == 2, checked.output
        expected = {"feature into": "names.feature:6: restore target 'host=127.0.0.1",
                    "drill.toml database": "drill.toml:6: [stores.ledger.database] '",
                    "URL database": "names.feature:3: the database of live store 'ledger' (LEDGER_URL) 'host=127.0.0.1",
                    "option-like URL database": "names.feature:3: the database of live store 'ledger' (LEDGER_URL) "
                                                "'-h127.0.0.1 -p"}[where]
        assert expected in checked.stderr and "is refused" in checked.stderr, checked.stderr
        assert "dbname=x' is refused" in checked.stderr or "-p" in checked.stderr
        assert "S3cret-pw" not in checked.output and "valid" not in checked.stdout
        assert not (tmp_path / "reports").exists()
        assert _connections_so_far(evil) == 0
