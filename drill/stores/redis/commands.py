"""What drill writes to and reads from a Redis server: the marker key, the batch size of scans, commands
on a client or a pipeline."""

from __future__ import annotations

from typing import Any

MARKER_KEY = b"drill:markers"  # a sorted set of the RPO markers (seq -> client time)
SCAN_BATCH = 1000


def _as_int(value: Any) -> int:
    return int(value)


def _cmd(target: Any, *args: Any) -> Any:
    """execute_command on a client or pipeline (untyped in redis-py)."""
    return target.execute_command(*args)
