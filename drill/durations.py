"""Durations as operators write them: `30 minutes`, `1 hour`, `90 seconds`, `1h30m`, `30m`, `2h`."""

from __future__ import annotations

import datetime as dt
import re

from drill.errors import DurationError, StoreError

__all__ = ["DURATION_HELP", "DurationError", "format_duration", "parse_duration"]

_UNIT_SECONDS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}

# Units in the compact form must go from largest to smallest: `1h30m`, `2m30s`, `1d4h`.
_COMPACT = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?"
                      r"(?:(?P<ms>\d+)ms)?$")
_WORDS = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)")

DURATION_HELP = "write e.g. `30 minutes`, `1 hour`, `90 seconds`, `500 milliseconds`, `90 days`, `1h30m`, `30m`, `2h`"


def parse_duration(text: str) -> float:
    """Return seconds. Raises DurationError naming the text and the accepted forms."""
    raw = text.strip().lower()
    if not raw:
        raise DurationError(f"empty duration: {DURATION_HELP}")
    compact = _COMPACT.match(raw.replace(" ", ""))
    if compact and any(compact.groupdict().values()):
        parts = compact.groupdict()
        return (float(parts["d"] or 0) * 86400 + float(parts["h"] or 0) * 3600 + float(parts["m"] or 0) * 60
                + float(parts["s"] or 0) + float(parts["ms"] or 0) / 1000)
    # Word form: one or more `<number> <unit>` groups, optionally joined by `and` or commas.
    remainder = re.sub(r"\b(and)\b|,", " ", raw)
    total = 0.0
    pos = 0
    matched = False
    for match in _WORDS.finditer(remainder):
        if remainder[pos:match.start()].strip():
            break
        unit = match.group("unit")
        if unit not in _UNIT_SECONDS:
            raise DurationError(f"unknown unit {unit!r} in duration {text!r}: {DURATION_HELP}")
        total += float(match.group("n")) * _UNIT_SECONDS[unit]
        pos = match.end()
        matched = True
    if not matched or remainder[pos:].strip():
        raise DurationError(f"cannot read duration {text!r}: {DURATION_HELP}")
    return total


def format_duration(seconds: float | None) -> str:
    """Short human form: `850ms`, `12.3s`, `4m05s`, `1h02m`."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m" if secs == 0 else f"{minutes}m{secs:02d}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h" if rest < 60 else f"{hours}h{rest // 60:02d}m"


def parse_point_in_time(text: str) -> float:
    """An ISO 8601 timestamp (a zone is required, Z for UTC) as epoch seconds."""
    try:
        stamp = dt.datetime.fromisoformat(text.strip())  # Python 3.11+ reads "Z" as UTC
    except ValueError:
        raise StoreError(f"{text!r} is not a point in time: write an ISO 8601 timestamp with its zone, "
                         f"e.g. \"2026-01-01T10:00:00Z\"") from None
    if stamp.tzinfo is None:
        raise StoreError(f"the point in time {text!r} has no time zone: add one (\"Z\" for UTC)")
    return stamp.timestamp()
