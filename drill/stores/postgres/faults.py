"""Server faults planted into a local PostgreSQL store's restore (drill.faults, capabilities.ServerFaults).

- killed: the server process that serves pg_restore is killed with SIGKILL as soon as it is at
  work (the postmaster then crash-restarts the whole server, as after any crashed backend);
- full-disk: the restored database is created in a tablespace on a tmpfs just big enough for an
  empty database, so the restore runs out of space (needs root to mount it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from drill.errors import DrillError, StoreError
from drill.faults import FaultError

if TYPE_CHECKING:
    from drill.stores.postgres.store import PostgresStore


@contextlib.contextmanager
def killed_during_restore(store: PostgresStore) -> Iterator[threading.Event]:
    """Kill (SIGKILL) the server process that serves pg_restore as soon as it is at work."""
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
def small_disk(store: PostgresStore, directory: Path) -> Iterator[Path]:
    """Restore into a tablespace on a tmpfs that holds an empty database and little more."""
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


def terminate_restore(store: PostgresStore) -> None:
    """Stop a running pg_restore by terminating every session on the database being restored."""
    with contextlib.suppress(DrillError, psycopg.Error), store.server.connect() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (store.database,))
