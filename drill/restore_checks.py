"""What `drill restore` asserts about a backup and its restored copy: --max-age, --expect-rows, --expect-at-least,
and the recovery point its canaries give.

Each failure is one line naming the backup file, so that a cron mail or a CI log says which backup
was stale or empty without a second look. A dump of an empty database restores without an error:
only a count can say that nothing came back.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from drill import backup_dates, canary
from drill.durations import DurationError, format_duration, parse_duration
from drill.errors import VerificationError
from drill.results import iso
from drill.stores.base import BackupArtifact, Store


@dataclass(frozen=True)
class Expectations:
    max_age: float | None = None  # seconds: the backup's date may be at most this old
    rows: int | None = None  # the restored store holds exactly this many units (rows, keys, documents...)
    at_least: int | None = None  # ... or at least this many

    @property
    def counts(self) -> bool:
        return self.rows is not None or self.at_least is not None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Expectations:
        return cls(args.max_age, args.expect_rows, args.expect_at_least)


def add_arguments(restore: Any) -> None:
    """`drill restore`'s assertions (exit 1 when one fails)."""
    restore.add_argument("--max-age", default=None, metavar="DURATION", type=_duration_arg,
                         help="fail (exit 1) before restoring when the backup is older than this (e.g. 1h, 26h)")
    restore.add_argument("--expect-rows", default=None, metavar="N", type=_count_arg,
                         help="fail (exit 1) unless the restored copy holds exactly N rows (keys, documents...)")
    restore.add_argument("--expect-at-least", default=None, metavar="N", type=_count_arg,
                         help="fail (exit 1) unless the restored copy holds at least N rows (keys, documents...)")


def _duration_arg(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError("must be a duration above zero, e.g. 1h")
    return seconds


def _count_arg(text: str) -> int:
    if not text.replace(",", "").replace("_", "").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(text.replace(",", "").replace("_", ""))


def check_age(label: str, date: backup_dates.BackupDate, max_age: float | None) -> str | None:
    """Before any target is touched: a backup dated in the future is refused; one older than max_age fails."""
    backup_dates.require_not_future(label, date)
    if max_age is None:
        return None
    age = max(0.0, time.time() - date.at)
    if age > max_age:
        raise VerificationError(f"stale backup: {label} is {format_duration(age)} old (dated {date.text}), more "
                                f"than --max-age {format_duration(max_age)}")
    return f"{format_duration(age)} old (at most {format_duration(max_age)})"


def check_counts(label: str, restored: Store, expected: Expectations) -> str | None:
    """After the restore: the restored copy holds the units --expect-rows / --expect-at-least ask for."""
    if not expected.counts:
        return None
    actual = restored.count()
    unit = restored.unit
    if expected.rows is not None and actual != expected.rows:
        raise VerificationError(f"{label}: the restored copy holds {actual} {unit}, expected {expected.rows} "
                                f"(--expect-rows)")
    if expected.at_least is not None and actual < expected.at_least:
        raise VerificationError(f"{label}: the restored copy holds {actual} {unit}, expected at least "
                                f"{expected.at_least} (--expect-at-least)"
                                + ("; it is the backup of an empty store" if actual == 0 else ""))
    return f"{actual} {unit} as expected"


def canary_point(store: str, restored: Store, artifact: BackupArtifact, interval: float) -> float | None:
    """The written time of the newest canary in the restored copy (its real recovery point), or None; a canary
    older than the backup's date by more than one canary interval fails ("older than its name says")."""
    newest = restored.markers().newest()
    if newest is None:
        return None
    if artifact.source != "drill":
        canary.check_against_date(store, artifact, newest, interval)
    return newest.written_at


def recovery_text(point: float, method: str) -> str:
    return f"recovery point {iso(point)} ({format_duration(max(0.0, time.time() - point))} ago, from {method})"
