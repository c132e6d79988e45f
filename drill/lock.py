"""One run per store at a time: an fcntl lock on a file per store, released when the process ends.

The kernel drops an flock when its holder dies, so a crashed run never leaves a stale lock. The
lock file holds the pid and command of the holder, for the message the second run prints.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drill.errors import DrillError


class LockBusy(DrillError):
    """Another drill run holds the lock of this store."""


@contextmanager
def store_lock(directory: Path, store: str, action: str) -> Iterator[Path]:
    """Hold `<directory>/<store>.lock` for the duration of the block; LockBusy if another run has it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{store}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(errors="replace").strip() or "unknown"
            raise LockBusy(f"another drill run holds the lock of store {store!r} ({holder}); {action} not started. "
                           f"Wait for it to finish (lock file {path})") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()}, {' '.join(sys.argv[1:3]) or 'drill'}, since "
                             f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode())
        try:
            yield path
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
