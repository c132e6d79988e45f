"""The SQLite adapter: one database file is one store.

- backup: the sqlite3 online backup API into a new file, then its sha256; the fingerprint is taken
  from the backup file itself, so it is exactly the backup's state;
- restore: the backup is checked first (sha256, `PRAGMA integrity_check`), then copied over the
  store's file (in place, destructive) or next to it (`into`: a new file in the same folder);
- fingerprint: per table, the row count and an order-independent hash of the rows, and the
  table's schema (drill's RPO markers are left out).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import BackupError, ProvisionError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.provision.live import live_url
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    check_backup_file,
    no_progress,
    sha256_file,
)
from drill_sqlite import KIND, SqliteOptions

MARKERS = "drill_markers"


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as conn:
        yield conn


def _tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                        "AND name <> ? ORDER BY name", (MARKERS,)).fetchall()
    return [(str(name), str(sql)) for name, sql in rows]


def fingerprint_of(path: Path) -> Fingerprint:
    parts = {}
    with _connect(path) as conn:
        for table, schema in _tables(conn):
            total, count = 0, 0
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                digest = hashlib.blake2b(repr(row).encode(), digest_size=8).digest()
                total = (total + int.from_bytes(digest, "big")) % (1 << 64)
                count += 1
            parts[table] = PartPrint(count=count, content=f"{total:016x}", schema={"table": schema})
    return KIND.fingerprint(parts, taken_at=time.time())


class SqliteMarkers:
    """RPO markers in a table of the database itself (left out of fingerprints and counts)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def prepare(self) -> None:
        with _connect(self.path) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKERS} (seq INTEGER PRIMARY KEY, written_at REAL)")

    def write(self, marker: Marker) -> None:
        with _connect(self.path) as conn:
            conn.execute(f"INSERT INTO {MARKERS} VALUES (?, ?)", (marker.seq, marker.written_at))

    def newest(self) -> Marker | None:
        if not self.path.exists():
            return None
        with _connect(self.path) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (MARKERS,)).fetchone():
                return None
            row = conn.execute(f"SELECT seq, written_at FROM {MARKERS} ORDER BY seq DESC LIMIT 1").fetchone()
        return Marker(int(row[0]), float(row[1])) if row else None

    def close(self) -> None:
        return None


@dataclass
class SqliteStore(Guarded):
    name: str
    config: StoreConfig
    path: Path
    kind: str = KIND.kind
    owned: list[Path] = field(default_factory=list)  # files this store made and removes when it closes

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "location": str(self.path), "server_version": f"SQLite {sqlite3.sqlite_version}",
                "provision": self.config.provision}

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        self.require_writes("seed")
        with _connect(self.path) as conn:
            conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, account TEXT NOT NULL, cents INTEGER)")
            conn.executemany("INSERT INTO entries VALUES (?, ?, ?)",
                             ((i, f"acct-{i % 37:03d} Zoë", (i * 7919) % 100_000 - 50_000) for i in range(count)))
        progress(f"seeded {count} rows into {self.path.name}")

    def count(self, part: str | None = None) -> int:
        with _connect(self.path) as conn:
            names = [t for t, _ in _tables(conn)]
            if part is not None and part not in names:
                raise StoreError(f"{self.name!r} has no table {part!r}")
            return sum(int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
                       for t in ([part] if part else names))

    def fingerprint(self) -> Fingerprint:
        return fingerprint_of(self.path)

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        directory.mkdir(parents=True, exist_ok=True)
        started = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{uuid.uuid4().hex[:6]}"
        target = directory / f"{backup_id}.sqlite"
        with _connect(self.path) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
        progress(f"sqlite3 backup of {self.path.name} into {target.name}")
        return BackupArtifact(id=backup_id, store=self.name, kind=self.kind, format="sqlite3", path=target,
                              sha256=sha256_file(target), size=target.stat().st_size, created_at=time.time(),
                              consistent_at=started, tool_versions={"sqlite3": sqlite3.sqlite_version},
                              fingerprint=fingerprint_of(target))

    def verify_backup(self, artifact: BackupArtifact) -> None:
        path = check_backup_file(artifact)  # present, and its sha256 is the one recorded when it was taken
        try:
            with _connect(path) as conn:
                verdict = conn.execute("PRAGMA integrity_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} is not a SQLite database: {exc}") from None
        if verdict != ("ok",):
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} fails integrity_check: {verdict}")

    def restore(self, artifact: BackupArtifact, into: str | None = None, progress: Progress = no_progress) -> Store:
        self.verify_backup(artifact)  # before the target is touched
        if into is None:
            self.require_destructive("overwrite")
            target: SqliteStore = self
        else:
            target = SqliteStore(name=into, config=replace(self.config, name=into, destructive=True),
                                 path=self.path.with_name(f"{into}.sqlite"))
            if target.path.exists():
                raise StoreError(f"cannot restore into {into!r}: {target.path} already exists")
            self.owned.append(target.path)
        staged = target.path.with_name(f".{target.path.name}.restoring")
        shutil.copyfile(artifact.path, staged)
        for leftover in (Path(f"{target.path}-wal"), Path(f"{target.path}-shm")):
            leftover.unlink(missing_ok=True)
        os.replace(staged, target.path)
        progress(f"restored {artifact.id} into {target.path}")
        return target

    def lose(self) -> None:
        self.require_destructive("lose")
        self.remove()

    def exists(self) -> bool:
        return self.path.exists()

    def remove(self) -> None:
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            path.unlink(missing_ok=True)

    def execute_sql(self, text: str) -> None:
        with _connect(self.path) as conn:
            try:
                conn.executescript(text)
            except sqlite3.Error as exc:
                raise StoreError(f"SQL on {self.name!r} failed: {exc}") from None

    def query_value(self, query: str) -> object:
        with _connect(self.path) as conn:
            try:
                row = conn.execute(query).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"the query on {self.name!r} failed: {exc}") from None
        return None if row is None else row[0]

    def check_integrity(self) -> None:
        with _connect(self.path) as conn:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()
        if verdict != ("ok",):
            raise StoreError(f"{self.name!r} fails SQLite's integrity check: {verdict}")

    def markers(self) -> SqliteMarkers:
        return SqliteMarkers(self.path)

    def close(self) -> None:
        while self.owned:
            path = self.owned.pop()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    folder = Path(tempfile.mkdtemp(prefix="drill-sqlite-"))
    cleanup.push(f"remove the throwaway SQLite folder of {config.name!r}", lambda: shutil.rmtree(folder, True))
    path = folder / f"{config.name}.sqlite"
    with _connect(path) as conn:
        conn.execute(f"PRAGMA journal_mode = {SqliteOptions.of(config).journal_mode}")
    progress(f"created a throwaway SQLite database {path}")
    return SqliteStore(name=config.name, config=config, path=path)


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    """An existing database file named by the URL in `url_env`: sqlite:////absolute/path.sqlite."""
    live = live_url(config, ("sqlite",), "sqlite:////absolute/path.sqlite")
    path = Path(live.parts.path)
    if not path.is_file():
        raise ProvisionError(f"live store {config.name!r}: {path} is not a file")
    store = SqliteStore(name=config.name, config=config, path=path)
    cleanup.push(f"close {config.name!r}", store.close)
    return store
