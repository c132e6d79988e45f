"""PostgreSQL: pg_dump custom format backups, pg_restore with parallel jobs, fingerprints inside the server.

The backup and its fingerprint see exactly the same data: drill opens a REPEATABLE READ
transaction, exports its snapshot, runs `pg_dump --snapshot` on it and fingerprints inside the
same transaction while pg_dump runs. The moment the snapshot is taken is the backup's
consistent point, which RPO is measured from when no marker writer ran.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drill import found_backups
from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.faults import FaultError, text_of
from drill.fingerprint import Fingerprint, PartPrint
from drill.pause import pause_point
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    check_recorded_sha256,
    no_progress,
    require_backup_file,
    sha256_file,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.postgres import KIND, PostgresOptions, base_backups, faults, self_test, sql_guard
from drill.stores.postgres import seed as postgres_seed
from drill.stores.postgres.binaries import PgBinaries
from drill.stores.postgres.database import DatabaseInfo, check_postgres_database, create_statement, read_info
from drill.stores.postgres.formats import BASE_BACKUP, check_pg_dump_tar
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.pitr import PitrCluster, markers_in
from drill.tool_env import minimal_env

MARKER_TABLE = "drill_markers"
CUSTOM_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
TAR_MAGIC, TAR_MAGIC_AT = b"ustar", 257

# Text output of every type must not depend on the session: the same data, the same hash.
_STABLE_SESSION = ("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
                   "SET extra_float_digits = 1; SET bytea_output = 'hex'")

_TABLES = f"""
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
  AND NOT (n.nspname = 'public' AND c.relname = '{MARKER_TABLE}')
ORDER BY 2, 3
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
"""
_INDEXES = """
SELECT i.indrelid, c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ANY(%(oids)s)
"""
_CONSTRAINTS = """
SELECT conrelid, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = ANY(%(oids)s)
"""
_SEQUENCES = """
SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
"""


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


@dataclass
class PostgresStore(Guarded):
    name: str
    config: StoreConfig
    server: PgServer
    database: str
    kind: str = KIND.kind
    # Databases this store created as restore targets on a server it does not own (live): dropped on close.
    scratch: list[str] = field(default_factory=list)
    # A tablespace for the database a restore creates (drill.faults plants a full disk with it).
    restore_tablespace: str | None = None
    pitr: PitrCluster | None = None  # when the store archives its WAL (config `pitr = true`)
    local: LocalPostgresCluster | None = None  # the throwaway cluster of a local store (base backups recover into it)
    # Base backups made outside drill (base_backup_*.tar.gz) -> the WAL archive folder to replay with each.
    wal_archives: dict[Path, Path] = field(default_factory=dict)
    # The database's owner, encoding and locale, read while it exists: an in-place restore re-creates it so.
    database_info: DatabaseInfo | None = None
    notes: list[str] = field(default_factory=list)  # what a restore could not keep (e.g. the owner), for evidence

    @property
    def skip_owners(self) -> bool:
        """Leave the dump's owners and grants out (restore_owners; auto: on the servers drill starts itself, where
        the dump's roles do not exist)."""
        owners = PostgresOptions.of(self.config).restore_owners
        if owners == "auto":
            return not self.config.is_live
        return owners == "skip"

    def describe(self) -> dict[str, str]:
        return {"kind": "postgres", "database": self.database, "location": self.server.description,
                "server_version": self.server.server_version(),
                "tools": f"{self.server.tools.bin_dir} (PostgreSQL {self.server.tools.version})",
                "provision": self.config.provision}

    # -- data -----------------------------------------------------------------------------------------

    def ensure_database(self) -> None:
        if not self.server.database_exists(self.database):
            with self.server.connect() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def remember_database(self) -> DatabaseInfo | None:
        """Read (again) the database's owner, encoding and locale while it exists; None when it does not."""
        with self.server.connect() as conn:
            found = read_info(conn, self.database)
        if found is not None:
            self.database_info = found
        return found

    def target_settings(self) -> dict[str, Any]:
        """What a later drill (`drill repair`) needs to re-create the database as it was."""
        return {"database_info": self.database_info.to_dict() if self.database_info else None}

    def use_target_settings(self, settings: dict[str, Any]) -> None:
        if settings.get("database_info"):
            self.database_info = DatabaseInfo.from_dict(settings["database_info"])

    def restore_target_exists(self, name: str) -> bool:
        return self.server.database_exists(name)

    def drop_restore_target(self, name: str) -> None:
        """Drop a database a restore into `name` made (a drill killed before its clean-up left it)."""
        check_postgres_database(name, "restore target")
        if name == self.database:
            raise StoreError(f"{name!r} is the store's own database, not a restore target")
        self._drop(name)

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        self.require_writes("seed")
        with self.server.connect(self.database) as conn:
            existing = [t for t in postgres_seed.SEED_TABLES
                        if conn.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone() != (None,)]
            if existing:
                raise StoreError(f"cannot seed {self.name!r}: database {self.database!r} already has table(s) "
                                 f"{', '.join(existing)}; seed an empty database")
            with conn.transaction():
                postgres_seed.seed(conn, count, progress)

    def count(self, part: str | None = None) -> int:
        with self.server.connect(self.database) as conn:
            if part is not None:
                schema, _, table = part.rpartition(".")
                ident = sql.Identifier(schema or "public", table)
                if conn.execute("SELECT to_regclass(%s)", (f"{schema or 'public'}.{table}",)).fetchone() == (None,):
                    raise StoreError(f"{self.name!r} has no table {part!r}")
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
                return int(row[0]) if row else 0
            total = 0
            for _oid, schema_name, table_name in conn.execute(_TABLES).fetchall():
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(str(schema_name), str(table_name)))).fetchone()
                total += int(row[0]) if row else 0
            return total

    def execute_sql(self, text: str) -> None:
        with self.server.connect(self.database) as conn:
            try:
                conn.execute(text.encode())
            except psycopg.Error as exc:
                raise StoreError(f"SQL on {self.name!r} failed: {redact_text(str(exc)).strip()}") from None

    def query_value(self, query: str) -> object:
        """A check reads: one statement (a prepared statement, which the server refuses to hold two of: `DROP
        TABLE x; SELECT 1` fails), inside a READ ONLY transaction on a live store that does not allow writes,
        always rolled back."""
        with self.server.connect(self.database, autocommit=False) as conn:
            conn.read_only = self.config.read_only
            try:
                row = conn.execute(query.encode(), prepare=True).fetchone()
            except psycopg.Error as exc:
                why = redact_text(str(exc)).strip()
                if "multiple commands" in why:
                    why = "a query check runs one statement; write one SELECT"
                elif "read-only transaction" in why:
                    why = (f"{why}; a query check on live store {self.name!r} only reads (set `allow_writes = true` "
                           f"under [stores.{self.name}] to let it write)")
                raise StoreError(f"the query on {self.name!r} failed: {why}") from None
            finally:
                conn.rollback()
        return None if row is None else row[0]

    def fingerprint(self) -> Fingerprint:
        with self.server.connect(self.database, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                return fingerprint_in(conn)

    # -- backup and restore ---------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        """pg_dump custom format (what pg_restore -j needs) into `directory`."""
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        return self._dump(directory / f"{backup_id}.dump", backup_id, ["-Fc"], "pg_dump-custom", progress)

    def dump_sql_gz(self, path: Path, progress: Progress = no_progress) -> BackupArtifact:
        """A gzip'd plain-SQL dump, as the seed runbook's cron job writes (`pg_dump | gzip`)."""
        return self._dump(path, path.name, ["-Fp", "-Z", "6"], "sql.gz", progress)

    def _dump(self, final: Path, backup_id: str, format_args: list[str], fmt: str,
              progress: Progress) -> BackupArtifact:
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.partial")
        server_version = self.server.server_version()
        with self.server.connect(self.database, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                consistent_at = time.time()
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
                assert row is not None
                snapshot = str(row[0])
                args = [self.server.tools.path("pg_dump"), *self.server.tool_args(self.database),
                        *format_args, "--snapshot", snapshot, "-f", str(partial)]
                progress(f"pg_dump {' '.join(format_args)} of {self.database} (snapshot {snapshot})")
                dump = subprocess.Popen(args, env=self.server.tool_env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
                try:
                    # The fingerprint runs in the exporting transaction while pg_dump reads the same snapshot.
                    fingerprint = fingerprint_in(conn)
                    _, stderr = dump.communicate()
                except BaseException:
                    dump.kill()
                    dump.wait()
                    partial.unlink(missing_ok=True)
                    raise
        if dump.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackupError(f"pg_dump of {self.name!r} failed (exit {dump.returncode}): "
                              f"{redact_text(stderr.strip())}")
        digest = sha256_file(partial)
        os.replace(partial, final)  # only a complete dump gets a name that looks like a backup
        return BackupArtifact(
            id=backup_id, store=self.name, kind="postgres", format=fmt, path=final, sha256=digest,
            size=final.stat().st_size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions={"pg_dump": self.server.tools.version}, server_version=server_version,
            fingerprint=fingerprint,
        )

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """Read the whole backup and prove it is what it claims before anything is touched."""
        if found_backups.is_found(artifact):  # made outside drill: the sha256 it was found with, read whole
            found_backups.check_found(artifact)
            return
        path = require_backup_file(artifact)
        actual_format = detect_format(path)
        check_recorded_sha256(artifact)
        if actual_format == "pg_dump-tar":
            check_pg_dump_tar(path)  # pg_restore 15 loops forever on a truncated tar archive: read it first
        if actual_format in ("pg_dump-custom", "pg_dump-tar"):
            # A matching sha256 proves the file is the one pg_dump completed, so reading the table of
            # contents suffices; a file with no recorded checksum is decoded whole (data included), so
            # a truncated archive fails here, not half-way into a restore.
            mode = ["--list"] if artifact.sha256 is not None else []
            done = subprocess.run([self.server.tools.path("pg_restore"), *mode, "-f", os.devnull, str(path)],
                                  capture_output=True, text=True, env=self.server.tool_env())
            if done.returncode != 0:
                raise BackupError(f"backup {path} is not a readable pg_dump archive: "
                                  f"{redact_text(done.stderr.strip())}")
        elif actual_format == "sql.gz":
            try:
                with gzip.open(path, "rb") as handle:
                    while handle.read(1 << 20):
                        pass
            except (OSError, EOFError) as exc:
                raise BackupError(f"backup {path} is not a complete gzip file: {exc}") from None

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        if into is not None:
            check_postgres_database(into, "restore target")
        self.verify_backup(artifact)  # before the target is touched
        if artifact.format == BASE_BACKUP.name:  # a whole cluster: replayed with its WAL archive, if one was named
            if into is not None:
                raise StoreError(f"a base backup restores a whole cluster, not one database: restore {self.name!r} "
                                 f"from {artifact.path.name} in place (its local cluster is throwaway)")
            self.require_destructive("overwrite")
            base_backups.recover(self, artifact, self.wal_archives.get(artifact.path), None, progress)
            return self
        target = into or self.database
        fmt = detect_format(artifact.path)
        if fmt in ("sql", "sql.gz"):  # a plain SQL file is data for its target only: read it all before touching it
            summary = sql_guard.check_file(artifact.path, fmt == "sql.gz", target, skip_owners=self.skip_owners)
            progress(f"{artifact.path.name}: {summary.statements} statements and {summary.copies} COPY blocks, "
                     f"checked: no psql meta-command, nothing outside the target")
        # A copy in a new database is drill's own: it may be written to and dropped, even on a live server.
        target_store = self if target == self.database else PostgresStore(
            name=into or self.name, config=replace(self.config, name=into or self.name, destructive=True),
            server=self.server, database=target)
        if self.server.database_exists(target):
            if target == self.database:
                self.require_destructive("overwrite")
                self.remember_database()  # its owner, encoding and locale, to create it again so
            elif into is not None and self.config.is_live:
                raise StoreError(f"restore target database {target!r} already exists on the live server of "
                                 f"{self.name!r}; name a new database (drill never overwrites one it did not create)")
            self._drop(target)
        elif target == self.database and self.database_info is None:
            progress(f"database {target} does not exist: creating it (owner: the connecting role {self.server.user})")
        self._create_database(target, self.database_info if target == self.database else None, progress)
        if target != self.database and self.config.is_live:
            self.scratch.append(target)
        pause_point(f"restore-started:{self.name}")
        if fmt in ("pg_dump-custom", "pg_dump-tar"):
            self._pg_restore(artifact.path, target, progress, parallel=fmt == "pg_dump-custom")
        else:
            self._psql_restore(artifact.path, target, fmt, progress)
        return target_store

    def _create_database(self, target: str, info: DatabaseInfo | None, progress: Progress) -> None:
        with self.server.connect() as conn:
            try:
                conn.execute(create_statement(target, info, tablespace=self.restore_tablespace))
                return
            except psycopg.errors.InsufficientPrivilege as exc:
                if info is None:
                    raise StoreError(f"cannot create database {target!r}: {redact_text(str(exc)).strip()}") from None
                # Only a superuser or a member of the owner role may give the database to it.
                note = (f"database {target!r} was re-created owned by {self.server.user!r}, not by its original owner "
                        f"{info.owner!r}: {redact_text(str(exc)).strip()} (connect as {info.owner!r} or a member of it "
                        f"to keep the owner)")
            conn.execute(create_statement(target, info, tablespace=self.restore_tablespace, owner=False))
        self.notes.append(note)
        progress(note)

    def _pg_restore(self, path: Path, target: str, progress: Progress, parallel: bool = True) -> None:
        # pg_restore -j needs the custom (or directory) format; a tar archive is restored by one job.
        jobs = (PostgresOptions.of(self.config).restore_jobs or max(1, min(4, os.cpu_count() or 1))) if parallel else 1
        owners = ["--no-owner", "--no-privileges"] if self.skip_owners else []
        args = [self.server.tools.path("pg_restore"), *self.server.tool_args(target), "-j", str(jobs),
                "--exit-on-error", "--verbose", *owners, str(path)]
        progress(f"pg_restore -j {jobs} {' '.join(owners)} into {target}".replace("  ", " "))
        self._run_with_progress(args, progress, "pg_restore")

    def _psql_restore(self, path: Path, target: str, fmt: str, progress: Progress) -> None:
        args = [self.server.tools.path("psql"), *self.server.tool_args(target), "-X", "-q",
                "-v", "ON_ERROR_STOP=1", "-f", "-"]
        progress(f"psql < {path.name} into {target}")
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=self.server.tool_env())
        assert proc.stdin is not None and proc.stderr is not None
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        sent = 0
        try:
            # Checked again while it is sent (the file could change after the check), owners and grants left out
            # when they are skipped; a problem stops the stream and psql (ON_ERROR_STOP) with it.
            for block in sql_guard.filtered(path, fmt == "sql.gz", target, skip_owners=self.skip_owners):
                proc.stdin.write(block)
                sent += len(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.wait()
            reader.join()
        if proc.returncode != 0:
            raise StoreError(f"psql restore of {path.name} failed (exit {proc.returncode}): "
                             f"{redact_text(b''.join(errors).decode(errors='replace').strip())}")
        progress(f"psql applied {sent} bytes of SQL")

    def _run_with_progress(self, args: list[str], progress: Progress, tool: str) -> None:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=self.server.tool_env())
        assert proc.stderr is not None
        tail: list[str] = []
        items = 0
        last = 0.0
        for line in proc.stderr:
            tail = [*tail, line.rstrip()][-20:]
            if "processing" in line or "creating" in line:
                items += 1
                if time.monotonic() - last > 1.0:
                    last = time.monotonic()
                    progress(f"{tool}: {items} items done, now {line.split(':', 1)[-1].strip()}")
        proc.wait()
        if proc.returncode != 0:
            errors = [t for t in tail if "error" in t.lower()] or tail
            raise StoreError(f"{tool} failed (exit {proc.returncode}): {redact_text(' | '.join(errors[-5:]))}")

    # -- disaster -------------------------------------------------------------------------------------

    def lose(self) -> None:
        self.require_destructive("drop")
        self.remember_database()  # how to create it again: owner, encoding, locale
        self._drop(self.database)

    def exists(self) -> bool:
        return self.server.database_exists(self.database)

    def remove(self) -> None:
        self._drop(self.database)

    def _drop(self, database: str) -> None:
        with self.server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def plant_change(self) -> PlantedChange:
        """The self-test's fault: one value of one row changed (self_test.py); its undo puts it back."""
        with self.server.connect(self.database) as conn:
            tables = [(str(s), str(t)) for _oid, s, t in conn.execute(_TABLES).fetchall()]
        return self_test.plant_change(self, tables)

    def markers(self) -> PgMarkerSink:
        return PgMarkerSink(self.server, self.database)

    def keep_target(self, name: str) -> None:
        if name in self.scratch:
            self.scratch.remove(name)

    def close(self) -> None:
        for database in self.scratch:
            with contextlib.suppress(StoreError, psycopg.Error):
                self._drop(database)
        self.scratch.clear()

    # -- point-in-time recovery (pitr.py), planted faults (faults.py) --------------------------------

    def _archive(self) -> PitrCluster:
        if self.pitr is None:
            raise StoreError(f"{self.name!r} does not archive its WAL, so it cannot be recovered to a point in time: "
                             f"set `pitr = true` under [stores.{self.name}] in drill.toml (local PostgreSQL stores)")
        return self.pitr

    def recovery_position(self) -> str | None:
        return self.pitr.current_lsn() if self.pitr is not None else None

    def base_backup(self, progress: Progress = no_progress) -> BackupArtifact:
        return self._archive().base_backup(self, progress)

    def recover_to(self, artifact: BackupArtifact, target_time: float, progress: Progress = no_progress,
                   position: str | None = None) -> None:
        if artifact.format == BASE_BACKUP.name:  # the runbook's base_backup_*.tar.gz and WAL folder
            self.verify_backup(artifact)
            base_backups.recover(self, artifact, self.wal_archives.get(artifact.path), target_time, progress)
            return
        self._archive().recover_to(artifact, target_time, progress, lsn=position)

    def use_wal_archive(self, base_backup: Path, wal: Path) -> None:
        """The WAL archive folder a base backup made outside drill is replayed with."""
        self.wal_archives[base_backup] = wal

    def present_markers(self) -> list[tuple[int, float]]:
        return markers_in(self)

    def plant_fault(self, fault: str, scratch: Path) -> contextlib.AbstractContextManager[object]:
        if self.config.provision != "local":
            raise FaultError(f"the fault {text_of(fault)!r} is planted into local PostgreSQL stores only; "
                             f"{self.name!r} is a {self.config.provision} postgres store")
        if fault == "killed":
            return faults.killed_during_restore(self)
        if fault == "full-disk":
            return faults.small_disk(self, scratch)
        raise FaultError(f"PostgreSQL stores cannot plant the fault {text_of(fault)!r}")

    def abort_restore(self) -> None:
        faults.terminate_restore(self)


# Each row's 64-bit hash, summed as numeric: order-independent, and duplicated rows add up (unlike
# XOR, where two identical rows would cancel out). Tried in order, fastest first:
# The row is `r.*`, never a bare `r`, which a column named r would shadow.
# - hash_record_extended (PostgreSQL 14+): each column hashed in binary by its type's hash function,
#   no text conversion; about 3x faster than COPY TO /dev/null. Values are compared as their type
#   compares them (numeric 1.0 = 1.00). Fails for a table with a column type that has no hash
#   support (json, point, ...): that table falls back.
# - hashtextextended over the row's text form (PostgreSQL 11+), then md5 slices (any version).
_CONTENT_SUMS = (
    ("hash_record_extended", "SELECT count(*), coalesce(sum(hash_record_extended(r.*, 0)), 0) FROM {} AS r"),
    ("hashtextextended(row text)", "SELECT count(*), coalesce(sum(hashtextextended(r.*::text, 0)), 0) FROM {} AS r"),
    ("md5(row text)", "SELECT count(*), coalesce(sum(('x' || left(md5(r.*::text), 16))::bit(64)::bigint::numeric), 0)"
                      " FROM {} AS r"),
)


def _content_sum(conn: psycopg.Connection[tuple[Any, ...]], table: sql.Identifier) -> tuple[str, int, str]:
    last: psycopg.Error | None = None
    for method, query in _CONTENT_SUMS:
        try:
            with conn.transaction():  # a savepoint: a method the server or a column type lacks is rolled back
                row = conn.execute(sql.SQL(query).format(table)).fetchone()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported) as exc:
            last = exc
            continue
        assert row is not None
        return method, int(row[0]), str(row[1])
    raise StoreError(f"no way to hash the rows of {table.as_string(conn)}: {last}")


def fingerprint_in(conn: psycopg.Connection[tuple[Any, ...]]) -> Fingerprint:
    """Fingerprint the database of `conn` inside its current transaction (so a snapshot can be shared)."""
    conn.execute(_STABLE_SESSION)
    tables = conn.execute(_TABLES).fetchall()
    oids = [int(oid) for oid, _, _ in tables]
    schema: dict[int, dict[str, str]] = {oid: {} for oid in oids}
    for relid, name, num, typ, notnull, default in conn.execute(_COLUMNS, {"oids": oids}):
        text = f"#{num} {typ}{' NOT NULL' if notnull else ''}{f' DEFAULT {default}' if default else ''}"
        schema[int(relid)][f"column {name}"] = text
    for relid, name, definition in conn.execute(_INDEXES, {"oids": oids}):
        schema[int(relid)][f"index {name}"] = _strip_schema_names(str(definition))
    for relid, name, definition in conn.execute(_CONSTRAINTS, {"oids": oids}):
        schema[int(relid)][f"constraint {name}"] = str(definition)
    parts: dict[str, PartPrint] = {}
    for oid, schema_name, table_name in tables:
        ident = sql.Identifier(str(schema_name), str(table_name))
        method, count, total = _content_sum(conn, ident)
        content = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
        # The method is part of the schema: two fingerprints made differently are never called equal.
        parts[f"{schema_name}.{table_name}"] = PartPrint(count, content, {**schema[int(oid)], "content hash": method})
    extras = {f"sequence {name}": str(value) for name, value in conn.execute(_SEQUENCES)}
    return KIND.fingerprint(parts, extras=extras, taken_at=time.time())


def _strip_schema_names(definition: str) -> str:
    # pg_get_indexdef qualifies the table (ON public.users); keep definitions comparable across targets.
    return re.sub(r" ON (ONLY )?\S+\.", r" ON \1", definition)


def detect_format(path: Path) -> str:
    """pg_dump-custom, pg_dump-tar, sql.gz or sql, from the file's first bytes (not its name)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(TAR_MAGIC_AT + len(TAR_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror}") from None
    if head.startswith(CUSTOM_MAGIC):
        return "pg_dump-custom"
    if head.startswith(GZIP_MAGIC):
        return "sql.gz"
    if head[TAR_MAGIC_AT:].startswith(TAR_MAGIC):  # pg_dump -Ft (ustar header)
        return "pg_dump-tar"
    if not head:
        raise BackupError(f"backup {path} is empty")
    return "sql"
