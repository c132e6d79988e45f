"""One throwaway PostgreSQL server shared by the small scenarios of a run ([drill] shared_servers).

`initdb` and a server start cost 1.5-3 s, a `CREATE DATABASE` a few milliseconds: the scenarios that only
seed, back up, lose, restore and verify a database (drill.provision.sharing decides which) get a database of
their own on one server the process starts on first use. Each process has its own (a pytest-xdist worker
too); it is stopped and its folder removed at the end of the run (drill.provision.sharing.stop_shared_servers,
called by the plugin, and at exit; a drill killed with SIGKILL leaves a folder the next run sweeps, as for
any throwaway cluster).

Isolation: when a scenario's last lease comes back, every database it made is dropped `WITH (FORCE)` and the
server is compared with what it held when it started (ServerState: postmaster, databases, roles, settings,
tablespaces, slots, prepared transactions, the objects of `postgres` and `template1`). Anything different,
a server that does not answer, or SQL a step ran that reaches beyond its database (`tainting_sql`), and the
server is stopped and removed: the next scenario gets a new one.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import DrillError
from drill.provision import sharing
from drill.stores.base import Progress
from drill.stores.postgres import PostgresOptions
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.server import PgServer

if TYPE_CHECKING:
    from drill.stores.postgres.store import PostgresStore

# Server-level state, read from any database (shared catalogs) ...
_SERVER_QUERIES = {
    "postmaster": "SELECT pg_postmaster_start_time()::text",  # a restarted or new server starts anew
    "databases": "SELECT datname, datdba, encoding, datistemplate, datallowconn, datconnlimit, dattablespace "
                 "FROM pg_database ORDER BY datname",
    "roles": "SELECT md5(a::text) FROM pg_authid a ORDER BY 1",
    "role settings": "SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2",
    "tablespaces": "SELECT spcname, spcowner, spcoptions::text FROM pg_tablespace ORDER BY 1",
    "settings": "SELECT name, setting, source FROM pg_settings ORDER BY 1",
    "settings files": "SELECT sourcefile, name, setting FROM pg_file_settings ORDER BY 1, 2",
    "replication slots": "SELECT slot_name FROM pg_replication_slots ORDER BY 1",
    "prepared transactions": "SELECT gid FROM pg_prepared_xacts ORDER BY 1",
    "authentication rules": "SELECT type, database::text, user_name::text, address, auth_method FROM pg_hba_file_rules "
                            "ORDER BY line_number",
}
# ... and what a database created from (template1) or connected to by default (postgres, PgServer.admin_db) holds.
_DATABASE_QUERY = """
SELECT 'relation ' || n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND n.nspname NOT LIKE 'pg_temp%'
UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
UNION ALL SELECT 'extension ' || extname FROM pg_extension
UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger
UNION ALL SELECT 'large object ' || oid::text FROM pg_largeobject_metadata
UNION ALL SELECT 'default acl ' || defaclobjtype::text FROM pg_default_acl
ORDER BY 1
"""

# SQL a step runs that may reach beyond its own database (roles, settings, files, other sessions, the server
# process): the server is replaced after the scenario, whatever the catalogs say afterwards. Conservative on
# purpose: a false alarm costs one server start.
_TAINTING_WORDS = re.compile(
    r"\b(role|user|system|tablespace|database|program|copy|lo_import|lo_export|pg_reload_conf|pg_terminate_backend"
    r"|pg_cancel_backend|pg_signal_backend|pg_ctl|subscription|publication|replication|slot|pg_create\w*"
    r"|pg_drop\w*|pg_file\w*|pg_read\w*|pg_write\w*|pg_promote|pg_switch_wal|set_config|load|dblink\w*"
    r"|extension|checkpoint|prepare|grant|revoke|owner|security|authorization|password)\b",
    re.IGNORECASE)


def tainting_sql(text: str) -> str | None:
    """The word that makes SQL a step runs reach (possibly) beyond its database, or None."""
    found = _TAINTING_WORDS.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True)
class ServerState:
    """What a fresh server holds, compared when a scenario gives it back."""

    parts: dict[str, tuple[tuple[Any, ...], ...]]

    @classmethod
    def read(cls, server: PgServer, admin: psycopg.Connection[tuple[Any, ...]] | None = None) -> ServerState:
        """The state, read on `admin` (a connection to the `postgres` database, else a new one) and on a connection
        to template1."""
        parts: dict[str, tuple[tuple[Any, ...], ...]] = {}
        with contextlib.ExitStack() as stack:
            conn = admin if admin is not None else stack.enter_context(server.connect())
            for name, query in _SERVER_QUERIES.items():
                parts[name] = tuple(tuple(row) for row in conn.execute(query).fetchall())
            parts["objects of postgres"] = tuple(tuple(row) for row in conn.execute(_DATABASE_QUERY))
        with server.connect("template1") as conn:
            parts["objects of template1"] = tuple(tuple(row) for row in conn.execute(_DATABASE_QUERY))
        return cls(parts)

    def differences(self, other: ServerState) -> list[str]:
        """What changed between this state and `other`, in words (empty: the same)."""
        found = []
        for name, rows in self.parts.items():
            now = other.parts.get(name, ())
            if rows != now:
                added = [_row_text(r) for r in now if r not in rows]
                gone = [_row_text(r) for r in rows if r not in now]
                detail = "; ".join(filter(None, (f"new: {', '.join(added[:3])}" if added else "",
                                                 f"gone: {', '.join(gone[:3])}" if gone else "")))
                found.append(f"{name} ({detail or 'changed'})")
        return found


def _row_text(row: tuple[Any, ...]) -> str:
    return " ".join(str(v) for v in row)


@dataclass
class SharedServer:
    """The process's shared cluster, what it held when it started, and the scenario's leases out on it."""

    cluster: LocalPostgresCluster
    server: PgServer
    baseline: ServerState
    # CREATE DATABASE ... STRATEGY FILE_COPY (PostgreSQL 15+): a third faster than WAL_LOG here (no fsync, no WAL).
    file_copy: bool = False
    leased: set[str] = field(default_factory=set)  # databases of the leases out (one scenario runs at a time)
    taint: list[str] = field(default_factory=list)  # why it must be replaced once its leases are back

    @property
    def baseline_databases(self) -> set[str]:
        return {str(row[0]) for row in self.baseline.parts["databases"]}

    def answers(self, conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
        """The same postmaster as at the start (not killed, not restarted) answers on `conn`."""
        found = tuple(tuple(row) for row in conn.execute(_SERVER_QUERIES["postmaster"]).fetchall())
        return found == self.baseline.parts["postmaster"]


_lock = threading.Lock()
_current: SharedServer | None = None


def _start() -> SharedServer:
    binaries = pg_binaries.for_local_cluster()
    cluster = LocalPostgresCluster(binaries)
    try:
        cluster.start()
        server = PgServer(host="127.0.0.1", port=cluster.port, user="postgres", password=None, tools=binaries,
                          description=f"shared local cluster on 127.0.0.1:{cluster.port} (PostgreSQL "
                                      f"{binaries.version}, {binaries.source})")
        return SharedServer(cluster, server, ServerState.read(server), file_copy=server.server_major() >= 15)
    except BaseException:
        cluster.stop()
        raise


def stop() -> None:
    """Stop the shared server and remove its folder (the end of the run; safe to call more than once)."""
    global _current
    with _lock:
        found, _current = _current, None
    if found is not None:
        found.cluster.stop()


sharing.on_run_end(stop)  # the plugin's unconfigure: the end of the run, failed or interrupted too
atexit.register(stop)  # a run that ends without it (an embedded pytest.main, say)


@dataclass
class Lease:
    """One store's database on the shared server, for one scenario."""

    shared: SharedServer
    database: str

    def taint(self, why: str) -> None:
        self.shared.taint.append(why)

    def screen(self, text: str) -> None:
        """SQL a step runs on the store: replace the server after the scenario if it may reach beyond the
        database."""
        word = tainting_sql(text)
        if word is not None:
            self.taint(f"SQL a step ran says {word!r}")


def lease(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> PostgresStore | None:
    """A PostgresStore whose database is new on the shared server (started now if there is none, or if the one
    there does not answer as it did); its return is pushed on `cleanup`. None when the database's name is taken
    there (the caller gives the store a private server)."""
    from drill.stores.postgres.store import PostgresStore as Made  # store.py imports this module

    global _current
    database = PostgresOptions.of(config).database or config.name
    with _lock:
        shared = _current
        conn = _checked_connection(shared) if shared is not None else None
        if shared is not None and conn is None:
            progress("the shared PostgreSQL server no longer answers as it did: starting a new one")
            shared.cluster.stop()
            shared = _current = None
        if shared is None or conn is None:
            progress("starting the run's shared throwaway PostgreSQL cluster")
            shared = _current = _start()
            conn = shared.server.connect()
        with conn:
            if database in shared.leased or database in shared.baseline_databases:
                return None
            shared.leased.add(database)
            made = Lease(shared, database)
            cleanup.push(f"drop the database of {config.name!r} on the shared PostgreSQL server",
                         lambda: give_back(made, progress))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0{}").format(
                sql.Identifier(database), sql.SQL(" STRATEGY FILE_COPY" if shared.file_copy else "")))
    store = Made(name=config.name, config=config, server=shared.server, database=database)
    store.shared_lease = made
    return store


def _checked_connection(shared: SharedServer) -> psycopg.Connection[tuple[Any, ...]] | None:
    """A connection to the shared server when it answers as it did at its start (with no lease out, the check runs
    between scenarios), else None."""
    if not shared.cluster.running:
        return None
    try:
        conn = shared.server.connect()
    except DrillError:
        return None
    try:
        if shared.leased or shared.answers(conn):
            return conn
    except psycopg.Error:
        pass
    conn.close()
    return None


def give_back(made: Lease, progress: Progress) -> None:
    """Drop the lease's database; once the scenario's last lease is back, drop every database the scenario made
    and compare the server with its start: any difference and it is removed (the next scenario gets a new one)."""
    global _current
    shared = made.shared
    with _lock:
        shared.leased.discard(made.database)
        if shared.leased:
            with contextlib.suppress(DrillError, psycopg.Error), shared.server.connect() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(made.database)))
            return
        problems = list(shared.taint)
        try:
            with shared.server.connect() as conn:
                names = [str(r[0]) for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
                for name in sorted(set(names) - shared.baseline_databases):
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                problems += shared.baseline.differences(ServerState.read(shared.server, conn))
        except (DrillError, psycopg.Error) as exc:
            problems.append(f"it does not answer ({str(exc).strip().splitlines()[0]})")
        if not problems:
            return
        if _current is shared:
            _current = None
    progress(f"the shared PostgreSQL server is replaced for the next scenario: {'; '.join(problems)}")
    shared.cluster.stop()
