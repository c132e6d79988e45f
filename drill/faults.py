"""Failures planted into a restore, to prove that rollback works when a restore really fails.

Each fault is real, not simulated in drill's own code path:
- corrupt: the restore is given a copy of the backup with bytes flipped in its middle;
- killed: the PostgreSQL server process doing the restore is killed with SIGKILL (the postmaster
  then crash-restarts the whole server, as after any crashed backend);
- full-disk: the restored database is created in a tablespace on a tmpfs just big enough for an
  empty database, so the restore runs out of space (needs root to mount it);
- timeout: the restore is given a time limit it cannot meet, and is stopped when it expires.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import psycopg

from drill.errors import DrillError, StoreError
from drill.stores.base import BackupArtifact, Store

CAUSES = {"the backup is corrupt": "corrupt", "the server is killed": "killed", "the disk is full": "full-disk",
          "it times out": "timeout"}
CAUSE_PATTERN = "|".join(CAUSES)
TIMEOUT_FAULT_SECONDS = 0.05


class FaultError(StoreError):
    """The fault could not be planted: the drill cannot show what it meant to show."""


def cause_of(text: str | None) -> str:
    return CAUSES[text] if text else "corrupt"


def corrupt_copy(artifact: BackupArtifact, directory: Path) -> BackupArtifact:
    """A copy of the backup with bytes flipped half-way in (its recorded checksum stays the original's)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"corrupt-{artifact.path.name}"
    if artifact.path.is_dir():
        shutil.copytree(artifact.path, target)
        files = sorted(p for p in target.rglob("*") if p.is_file() and p.stat().st_size > 0)
        if not files:
            raise StoreError(f"backup {artifact.id} has no file to corrupt")
        victim = max(files, key=lambda p: p.stat().st_size)
    else:
        shutil.copyfile(artifact.path, target)
        victim = target
    size = victim.stat().st_size
    with victim.open("r+b") as handle:
        handle.seek(size // 2)
        chunk = handle.read(64)
        handle.seek(size // 2)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    return replace(artifact, path=target, id=f"{artifact.id} (corrupted copy)")


def _require_local_postgres(store: Store, fault: str) -> None:
    if store.kind != "postgres" or store.config.provision != "local":
        raise FaultError(f"the fault {fault!r} is planted into local PostgreSQL stores only; {store.name!r} is a "
                         f"{store.config.provision} {store.kind} store")


@contextlib.contextmanager
def killed_during_restore(store: Any) -> Iterator[threading.Event]:
    """Kill (SIGKILL) the server process that serves pg_restore as soon as it is at work."""
    _require_local_postgres(store, "the server is killed")
    server = store.server
    database = store.database
    fired = threading.Event()
    stop = threading.Event()

    def hunt() -> None:
        with contextlib.suppress(DrillError, psycopg.Error), server.connect() as conn:
            while not stop.is_set():
                row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                                   "application_name = 'pg_restore' LIMIT 1", (database,)).fetchone()
                if row:
                    os.kill(int(row[0]), signal.SIGKILL)
                    fired.set()
                    return
                time.sleep(0.005)

    thread = threading.Thread(target=hunt, name="drill-fault-kill", daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def small_disk(store: Any, directory: Path) -> Iterator[Path]:
    """Restore into a tablespace on a tmpfs that holds an empty database and little more."""
    _require_local_postgres(store, "the disk is full")
    if os.geteuid() != 0:
        raise StoreError("the fault 'the disk is full' mounts a small tmpfs and needs root; run the drill as root")
    server = store.server
    # Directly under the temporary directory: the server's account must reach it (a pytest or home
    # directory above it may be closed to others).
    mount = Path(tempfile.mkdtemp(prefix="drill-small-disk-"))
    with server.connect() as conn:
        row = conn.execute("SELECT pg_database_size('template1')").fetchone()
        data_dir = conn.execute("SHOW data_directory").fetchone()
    assert row is not None and data_dir is not None
    size_kb = int(row[0]) // 1024 + 512  # an empty database fits; the restored data does not
    owner = Path(str(data_dir[0])).stat()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700,uid={owner.st_uid},"
                           f"gid={owner.st_gid}", "drill-small-disk", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        raise FaultError(f"cannot mount a small tmpfs at {mount} for the fault 'the disk is full': "
                         f"{done.stderr.strip()}")
    space = f"drill_small_{uuid.uuid4().hex[:6]}"
    try:
        try:
            with server.connect() as conn:
                conn.execute(f"CREATE TABLESPACE {space} LOCATION '{mount}'")
                # What an empty database really takes there; then shrink the disk to that and a little more.
                probe = f"drill_probe_{uuid.uuid4().hex[:6]}"
                conn.execute(f"CREATE DATABASE {probe} TABLESPACE {space}")
                stats = os.statvfs(mount)
                used_kb = (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 1024
                conn.execute(f"DROP DATABASE {probe}")
            subprocess.run(["mount", "-o", f"remount,size={used_kb + 256}k", str(mount)], check=True,
                           capture_output=True)
        except (psycopg.Error, subprocess.CalledProcessError) as exc:
            raise FaultError(f"could not plant the fault 'the disk is full' (a tablespace on a small tmpfs at "
                             f"{mount}): {exc}") from None
        store.restore_tablespace = space
        yield mount
    finally:
        store.restore_tablespace = None
        with contextlib.suppress(DrillError, psycopg.Error), server.connect() as conn:
            conn.execute(f"DROP TABLESPACE IF EXISTS {space}")
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        with contextlib.suppress(OSError):
            mount.rmdir()


def run_with_timeout(action: Callable[[], Store], seconds: float, abort: Callable[[], None],
                     what: str) -> Store:
    """Run the restore in a worker; past its time limit, stop it (abort) and fail with a clear message."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["store"] = action()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="drill-restore", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        deadline = time.monotonic() + 120
        while worker.is_alive() and time.monotonic() < deadline:
            abort()
            worker.join(0.1)
        raise StoreError(f"{what} did not finish within its time limit of {seconds:g} seconds and was stopped")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return cast(Store, outcome["store"])


def abort_postgres_restore(store: Store) -> Callable[[], None]:
    """Stop a running pg_restore by terminating every session on the database being restored."""
    server = getattr(store, "server", None)
    database = getattr(store, "database", None)

    def abort() -> None:
        if server is None:
            return
        with contextlib.suppress(DrillError, psycopg.Error), server.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))

    return abort
