"""Backups made outside drill (production's cron, the runbook's scripts): the newest file a glob finds, and its date."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from drill.errors import BackupError


def newest_matching(pattern: str, base: Path, zone: str = "UTC") -> tuple[Path, float]:
    """The newest file matching a glob (backups made outside drill), dated by its name (in `zone`) or its mtime."""
    full = os.path.normpath(pattern if os.path.isabs(pattern) else base / pattern)  # no dr/../backups in messages
    matches = [Path(p) for p in glob.glob(full) if Path(p).is_file()]
    if not matches:
        raise BackupError(f"no backup file matches {pattern!r} (searched {full})")
    dated = sorted(((date_of(p, zone), p) for p in matches), key=lambda pair: (pair[0], str(pair[1])))
    when, newest = dated[-1]
    return newest, when


def date_of(path: Path, zone: str = "UTC") -> float:
    """A backup's date from its name (runbook style: userdb_20240115_143000.sql.gz, in `zone`), else its mtime."""
    from drill.backup_dates import date_of as dated  # one rule for drills and for `drill restore`

    return dated(path, zone)
