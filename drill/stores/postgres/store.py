"""PostgreSQL: pg_dump custom format backups, pg_restore with parallel jobs, fingerprints inside the server.

The backup and its fingerprint see exactly the same data: drill opens a REPEATABLE READ
transaction, exports its snapshot, runs `pg_dump --snapshot` on it and fingerprints inside the
same transaction while pg_dump runs. The moment the snapshot is taken is the backup's
consistent point, which RPO is measured from when no marker writer ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drill.config import StoreConfig
from drill.errors import StoreError
from drill.faults import FaultError, text_of
from drill.fingerprint import Fingerprint, PartPrint
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Progress,
    no_progress,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.postgres import KIND, PostgresOptions, base_backups, faults, self_test
from drill.stores.postgres import seed as postgres_seed
from drill.stores.postgres.content_sums import STABLE_SESSION, content_sum
from drill.stores.postgres.database import DatabaseInfo, check_postgres_database, read_info
from drill.stores.postgres.early_sums import EarlySums
from drill.stores.postgres.formats import BASE_BACKUP
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.pitr import PitrCluster, markers_in
from drill.stores.postgres.server import MARKER_TABLE, PgMarkerSink, PgServer
from drill.stores.postgres.shared import Lease
from drill.stores.postgres.transfers import (
    CUSTOM_MAGIC,
    GZIP_MAGIC,
    TAR_MAGIC,
    TAR_MAGIC_AT,
    PgTransfers,
    detect_format,
)

__all__ = ["CUSTOM_MAGIC", "GZIP_MAGIC", "MARKER_TABLE", "TAR_MAGIC", "TAR_MAGIC_AT", "PgMarkerSink", "PgServer",
           "PostgresStore", "detect_format", "fingerprint_in"]


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
class PostgresStore(PgTransfers):
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
    # Its database's lease on the run's shared server (shared.py), when it has no server of its own.
    shared_lease: Lease | None = None
    # The content sums its last restore took while pg_restore ran (early_sums.py): for the next fingerprint only.
    early_sums: EarlySums | None = None

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

    # -- backup and restore: transfers.py (PgTransfers) -----------------------------------------------

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

    def own_restore_target(self, name: str) -> str | None:
        return "database" if name == self.database else None  # quoted identifiers: case matters

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
        if self.shared_lease is not None:  # SQL that may reach beyond the database: a new server for the next scenario
            self.shared_lease.screen(text)
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
        early, self.early_sums = self.early_sums, None  # the sums a restore took stand in once, if at all
        with self.server.connect(self.database, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                # Passed beside the call, not as an argument: fingerprint_in is this module's to replace (the
                # self-test's blind plugin in tests does), and a replacement takes the connection alone.
                offered = _EARLY_SUMS.set(early)
                try:
                    return fingerprint_in(conn)
                finally:
                    _EARLY_SUMS.reset(offered)

    # -- disaster -------------------------------------------------------------------------------------

    def lose(self) -> None:
        self.require_destructive("drop")
        self.early_sums = None
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
        self.early_sums = None  # the recovered cluster is not what a restore's sums stood for
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
        self.early_sums = None  # a planted server fault may change data without a commit (a crash, a full disk)
        if self.shared_lease is not None:  # a server fault on the shared server: replaced after the scenario
            self.shared_lease.taint(f"the fault {text_of(fault)!r} was planted")
        if fault == "killed":
            return faults.killed_during_restore(self)
        if fault == "full-disk":
            return faults.small_disk(self, scratch)
        raise FaultError(f"PostgreSQL stores cannot plant the fault {text_of(fault)!r}")

    def abort_restore(self) -> None:
        faults.terminate_restore(self)


_EARLY_SUMS: ContextVar[EarlySums | None] = ContextVar("early_sums", default=None)


def fingerprint_in(conn: psycopg.Connection[tuple[Any, ...]]) -> Fingerprint:
    """Fingerprint the database of `conn` inside its current transaction (so a snapshot can be shared)."""
    conn.execute(STABLE_SESSION)
    offered = _EARLY_SUMS.get()
    early = offered.usable_in(conn) if offered is not None else {}  # first statement: the transaction's snapshot
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
        method, count, total = early.get(int(oid)) or content_sum(conn, ident)
        content = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
        # The method is part of the schema: two fingerprints made differently are never called equal.
        parts[f"{schema_name}.{table_name}"] = PartPrint(count, content, {**schema[int(oid)], "content hash": method})
    extras = {f"sequence {name}": str(value) for name, value in conn.execute(_SEQUENCES)}
    return KIND.fingerprint(parts, extras=extras, taken_at=time.time())


def _strip_schema_names(definition: str) -> str:
    # pg_get_indexdef qualifies the table (ON public.users); keep definitions comparable across targets.
    return re.sub(r" ON (ONLY )?\S+\.", r" ON \1", definition)
