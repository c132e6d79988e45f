"""When a backup made outside drill claims to be from: the date in its file name, else its mtime.

Runbook crons name their backups by the local time of the machine that made them
(`userdb_$(date +%Y%m%d_%H%M%S).sql.gz`), so a date in a name is read in the zone drill.toml says
(`backup_time_zone`, default UTC). A backup dated in the future is an error: a wrong zone or a
wrong clock would otherwise make a stale backup look fresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from drill.durations import format_duration
from drill.errors import BackupError, DrillError
from drill.results import iso

# A date in a name, runbook style: 20240115_143000, 2024-01-15T14:30:00, 20240115-1430, 20240115.
_NAME_DATE = re.compile(r"(?P<y>20\d\d)-?(?P<m>[01]\d)-?(?P<d>[0-3]\d)"
                        r"(?:[_T-]?(?P<H>[0-2]\d):?(?P<M>[0-5]\d)(?::?(?P<S>[0-5]\d))?)?")
# How far ahead of this machine's clock a backup's date may be before it counts as "in the future":
# the clocks of the machine that made it and of this one may differ a little.
CLOCK_SKEW = 60.0


class TimeZoneError(DrillError):
    """backup_time_zone names no zone this machine knows."""


class FutureBackupError(BackupError):
    """A backup whose date is later than now."""


@dataclass(frozen=True)
class BackupDate:
    at: float  # epoch seconds
    source: str  # name (read in `zone`) | mtime | drill (a backup drill took) | repository (its manifest)
    zone: str

    @property
    def how(self) -> str:
        return {"name": f"from its name, read in {self.zone}", "mtime": "from its mtime",
                "drill": "taken by this drill", "repository": "from its repository manifest"}.get(self.source,
                                                                                                  self.source)

    @property
    def text(self) -> str:
        return f"{iso(self.at)} ({self.how})"


def zone(name: str) -> dt.tzinfo:
    """The time zone an IANA name (`UTC`, `Europe/Paris`) stands for; TimeZoneError if unknown here."""
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(f"{name!r} is not a time zone this machine knows: use an IANA name such as \"UTC\" or "
                            f"\"Europe/Paris\" (the time zone database comes from the system, or pip's tzdata)"
                            ) from None


def name_date(name: str, zone_name: str = "UTC") -> float | None:
    """The date in a backup's file name, read in `zone_name`, as epoch seconds; None when it has none."""
    match = _NAME_DATE.search(name)
    if match is None:
        return None
    with contextlib.suppress(ValueError):
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        stamp = dt.datetime(parts["y"], parts["m"], parts["d"], parts.get("H", 0), parts.get("M", 0),
                            parts.get("S", 0), tzinfo=zone(zone_name))
        return stamp.timestamp()
    return None


def backup_date(path: Path, zone_name: str = "UTC") -> BackupDate:
    """A backup's date: from its name (in `zone_name`), else its modification time."""
    from_name = name_date(path.name, zone_name)
    if from_name is not None:
        return BackupDate(from_name, "name", zone_name)
    return BackupDate(path.stat().st_mtime, "mtime", zone_name)


def date_of(path: Path, zone_name: str = "UTC") -> float:
    return backup_date(path, zone_name).at


def require_not_future(what: str, when: BackupDate, now: float | None = None) -> None:
    """FutureBackupError when `when` is later than now (beyond CLOCK_SKEW); `what` names the backup."""
    now = time.time() if now is None else now
    if when.at > now + CLOCK_SKEW:
        hint = (f"check backup_time_zone (now {when.zone}) in drill.toml" if when.source == "name"
                else "check the clock of the machine that wrote it")
        raise FutureBackupError(f"{what} is dated in the future: {when.text}, {format_duration(when.at - now)} "
                                f"after this machine's clock; {hint}")
