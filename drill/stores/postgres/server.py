"""Where a PostgreSQL store's database lives (PgServer: connections, the client programs' arguments) and its
RPO markers (PgMarkerSink: rows of drill_markers)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psycopg

from drill.errors import StoreError
from drill.redact import redact_text
from drill.stores.base import Marker
from drill.stores.postgres.binaries import PgBinaries
from drill.tool_env import minimal_env

MARKER_TABLE = "drill_markers"


@dataclass
class PgServer:
    """Where a PostgreSQL store's database lives and the client programs that talk to it."""

    host: str
    port: int
    user: str
    password: str | None
    tools: PgBinaries
    admin_db: str = "postgres"
    sslmode: str | None = None
    description: str = ""  # redacted location, for reports

    def conninfo(self, dbname: str) -> str:
        parts: dict[str, str] = {"host": self.host, "port": str(self.port), "user": self.user,
                                 "dbname": dbname, "application_name": "drill"}
        if self.password is not None:
            parts["password"] = self.password
        if self.sslmode:
            parts["sslmode"] = self.sslmode
        return psycopg.conninfo.make_conninfo(**parts)

    def tool_args(self, dbname: str) -> list[str]:
        """Connection arguments for pg_dump/pg_restore/psql: one libpq connection string, built with libpq's
        quoting, so that a database name is only ever a name (one holding `=` or `postgresql://` would
        otherwise be read as a connection string). Never the password: it goes in the environment."""
        parts = {"host": self.host, "port": str(self.port), "user": self.user, "dbname": dbname}
        if self.sslmode:
            parts["sslmode"] = self.sslmode
        return ["-d", psycopg.conninfo.make_conninfo(**parts)]  # each tool names itself (application_name)

    def tool_env(self) -> dict[str, str]:
        """A minimal environment (drill.tool_env): libpq's own PG* variables (like psycopg, the tools fall back on
        an existing PGPASSWORD or PGPASSFILE when the URL has no password), the password, nothing else."""
        values = {"PGPASSWORD": self.password} if self.password is not None else {}
        if self.sslmode:
            values["PGSSLMODE"] = self.sslmode
        return minimal_env(("PG",), values=values)

    def connect(self, dbname: str | None = None, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self.conninfo(dbname or self.admin_db), autocommit=autocommit,
                                   connect_timeout=15)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.description or self.host}: "
                             f"{redact_text(str(exc)).strip()}") from None

    def database_exists(self, dbname: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None

    def server_version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    def server_major(self) -> int:
        """From server_version_num (e.g. 150018), which also works for 17devel or 16beta1."""
        with self.connect() as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        return int(row[0]) // 10000 if row else 0


class PgMarkerSink:
    """RPO markers as rows of drill_markers (seq, client epoch); newest() reads the restored copy."""

    def __init__(self, server: PgServer, database: str) -> None:
        self.server = server
        self.database = database
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def prepare(self) -> None:
        self._conn = self.server.connect(self.database)
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
                           "(seq bigint PRIMARY KEY, written_at double precision NOT NULL, "
                           "server_time timestamptz NOT NULL DEFAULT now())")

    def write(self, marker: Marker) -> None:
        assert self._conn is not None, "prepare() first"
        self._conn.execute(f"INSERT INTO {MARKER_TABLE} (seq, written_at) VALUES (%s, %s)",
                           (marker.seq, marker.written_at))

    def newest(self) -> Marker | None:
        with self.server.connect(self.database) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (f"public.{MARKER_TABLE}",)).fetchone()
            if not exists or exists[0] is None:
                return None
            row = conn.execute(f"SELECT seq, written_at FROM {MARKER_TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
        return Marker(int(row[0]), float(row[1])) if row else None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
