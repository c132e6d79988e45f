"""Backups and restores of a PostgreSQL store: pg_dump on a snapshot shared with the fingerprint, every backup
proven readable before the target is touched, pg_restore -j or psql fed plain SQL that the guard checked.

PgTransfers is a part of PostgresStore (store.py), kept here so that each file holds one concern.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from drill import found_backups
from drill.errors import BackupError, StoreError
from drill.pause import pause_point
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Progress,
    Store,
    check_recorded_sha256,
    no_progress,
    require_backup_file,
    require_new_restore_target,
    sha256_file,
)
from drill.stores.postgres import PostgresOptions, base_backups, sql_guard
from drill.stores.postgres.database import DatabaseInfo, check_postgres_database, create_statement
from drill.stores.postgres.early_sums import EarlySums, EarlyTableSums, RestorePlan
from drill.stores.postgres.formats import BASE_BACKUP, check_pg_dump_tar
from drill.stores.postgres.server import PgServer

CUSTOM_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
TAR_MAGIC, TAR_MAGIC_AT = b"ustar", 257


class PgTransfers(Guarded):
    """pg_dump, verification and restores of PostgresStore, whose fields and methods these use."""

    server: PgServer
    database: str
    scratch: list[str]
    restore_tablespace: str | None
    wal_archives: dict[Path, Path]
    database_info: DatabaseInfo | None
    notes: list[str]
    early_sums: EarlySums | None

    if TYPE_CHECKING:  # PostgresStore's own
        @property
        def skip_owners(self) -> bool: ...

        def remember_database(self) -> DatabaseInfo | None: ...

        def _drop(self, database: str) -> None: ...

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
        # The store module's fingerprint_in, looked up now: store.py imports this module (and the self-test's
        # plugin in tests replaces fingerprint_in there).
        from drill.stores.postgres import store as store_module

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
                    # The fingerprint runs in the exporting transaction while pg_dump reads the same snapshot, with
                    # no parallel workers: pg_dump's compression takes one core, so the fingerprint has the other
                    # (parallel workers would take it from pg_dump: 0.4 s slower at 826 MB, bench/README.md).
                    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    fingerprint = store_module.fingerprint_in(conn)
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
        from drill.stores.postgres.store import PostgresStore  # store.py imports this module

        assert isinstance(self, PostgresStore)  # the only class made of these parts
        if into is not None:
            check_postgres_database(into, "restore target")
            require_new_restore_target(self, into)  # `into` its own database would drop it with no safety copy
        self.early_sums = None  # a restore changes what earlier sums stood for
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
            # Tables summed while pg_restore -j loads the others, in a database drill has just created that no
            # client of a live server uses: never an in-place restore of a live store (early_sums.py).
            early = fmt == "pg_dump-custom" and (target_store is not self or not self.config.is_live)
            target_store.early_sums = self._pg_restore(artifact.path, target, progress,
                                                       parallel=fmt == "pg_dump-custom", early_sums=early)
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

    def _pg_restore(self, path: Path, target: str, progress: Progress, parallel: bool = True,
                    early_sums: bool = False) -> EarlySums | None:
        """pg_restore; with `early_sums`, the content sums of the tables it loaded, taken while it ran."""
        # pg_restore -j needs the custom (or directory) format; a tar archive is restored by one job.
        jobs = (PostgresOptions.of(self.config).restore_jobs or max(1, min(4, os.cpu_count() or 1))) if parallel else 1
        owners = ["--no-owner", "--no-privileges"] if self.skip_owners else []
        args = [self.server.tools.path("pg_restore"), *self.server.tool_args(target), "-j", str(jobs),
                "--exit-on-error", "--verbose", *owners, str(path)]
        progress(f"pg_restore -j {jobs} {' '.join(owners)} into {target}".replace("  ", " "))
        if not early_sums or jobs < 2:  # one job prints no `finished item` lines, and leaves no core idle
            self._run_with_progress(args, progress, "pg_restore")
            return None
        toc = subprocess.run([self.server.tools.path("pg_restore"), "--list", str(path)], capture_output=True,
                             text=True, env=self.server.tool_env())
        plan = RestorePlan.of(toc.stdout) if toc.returncode == 0 else None
        if plan is None:  # an item that may write to loaded tables (early_sums.py), or an unreadable list
            self._run_with_progress(args, progress, "pg_restore")
            return None
        summer = EarlyTableSums(self.server, target, jobs, plan)
        try:
            self._run_with_progress(args, progress, "pg_restore", on_line=summer.line)
        except BaseException:
            summer.abandon()
            raise
        try:
            return summer.finish()
        except (StoreError, psycopg.Error):  # the restore succeeded: the fingerprint reads every table itself
            return None

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

    def _run_with_progress(self, args: list[str], progress: Progress, tool: str,
                           on_line: Callable[[str], None] | None = None) -> None:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=self.server.tool_env())
        assert proc.stderr is not None
        tail: list[str] = []
        items = 0
        last = 0.0
        for line in proc.stderr:
            if on_line is not None:
                on_line(line)
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
