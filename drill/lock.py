"""One run per store at a time: an fcntl lock on a file per store, released when the process ends.

The kernel drops an flock when its holder dies, so a crashed run never leaves a stale lock. The
lock file holds the pid and command of the holder, for the message the second run prints. The lock
directory is drill's own (0700) and the lock file is opened with O_NOFOLLOW: a symlink planted at
`.locks/<store>.lock` stops the run instead of having its target truncated.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drill import safe_paths
from drill.errors import DrillError


class LockBusy(DrillError):
    """Another drill run holds the lock of this store."""


@contextmanager
def store_lock(directory: Path, store: str, action: str) -> Iterator[Path]:
    """Hold `<directory>/<store>.lock` for the duration of the block; LockBusy if another run has it."""
    safe_paths.private_dir(directory)
    path = safe_paths.inside(directory, f"{safe_paths.store_name(store)}.lock")
    descriptor = safe_paths.open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 500, 0).decode(errors="replace").strip() or "unknown"
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
