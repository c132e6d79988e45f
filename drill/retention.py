"""Which backups a retention policy keeps: hourly, daily, weekly and monthly counts (pure, no I/O).

The runbook's meaning (HOURLY_RETENTION=24 hours, RETENTION_DAILY=30 days, RETENTION_WEEKLY=12
weeks, RETENTION_MONTHLY=12 months): for each class, look at the N most recent calendar periods
counted back from now (the current hour and the 23 before it; today and the 29 days before; this
ISO week and the 11 before; this month and the 11 before, all in UTC) and keep the newest backup
of each period that has one. A backup is kept if any class keeps it. Periods without a backup are
not filled from older ones: retention is by age, as in the runbook, not by number of backups.
Backups dated in the future (clock skew) are kept. A count of 0 disables its class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetentionPolicy:
    hourly: int = 24
    daily: int = 30
    weekly: int = 12
    monthly: int = 12


@dataclass(frozen=True)
class Decision:
    keep: dict[str, list[str]]  # backup id -> the reasons it is kept (e.g. ["daily 2026-11-20"])
    delete: list[str]  # backup ids, oldest first


Period = tuple[int, ...]


def _hour(t: dt.datetime) -> Period:
    return (t.year, t.month, t.day, t.hour)


def _day(t: dt.datetime) -> Period:
    return (t.year, t.month, t.day)


def _week(t: dt.datetime) -> Period:
    year, week, _ = t.isocalendar()
    return (year, week)


def _month(t: dt.datetime) -> Period:
    return (t.year, t.month)


def _recent_periods(now: dt.datetime, count: int, period: Callable[[dt.datetime], Period],
                    step: Callable[[dt.datetime], dt.datetime]) -> set[Period]:
    found: set[Period] = set()
    moment = now
    while len(found) < count:
        found.add(period(moment))
        moment = step(moment)
    return found


def _previous_month(t: dt.datetime) -> dt.datetime:
    first = t.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    return first - dt.timedelta(days=1)


def decide(backups: Iterable[tuple[str, float]], policy: RetentionPolicy, now: float) -> Decision:
    """Split backups (id, epoch time) into those the policy keeps (with reasons) and those to delete."""
    entries = sorted(backups, key=lambda pair: (pair[1], pair[0]))
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    classes: list[tuple[str, int, Callable[[dt.datetime], Period], Callable[[dt.datetime], dt.datetime]]] = [
        ("hourly", policy.hourly, _hour, lambda t: t - dt.timedelta(hours=1)),
        ("daily", policy.daily, _day, lambda t: t - dt.timedelta(days=1)),
        ("weekly", policy.weekly, _week, lambda t: t - dt.timedelta(weeks=1)),
        ("monthly", policy.monthly, _month, _previous_month),
    ]
    keep: dict[str, list[str]] = {}
    for backup_id, when in entries:
        if when > now:
            keep.setdefault(backup_id, []).append("dated in the future")
    for label, count, period, step in classes:
        if count <= 0:
            continue
        wanted = _recent_periods(moment, count, period, step)
        newest: dict[Period, str] = {}
        for backup_id, when in entries:  # oldest first: the last one seen in a period is its newest
            if when > now:
                continue
            key = period(dt.datetime.fromtimestamp(when, dt.UTC))
            if key in wanted:
                newest[key] = backup_id
        for key, backup_id in newest.items():
            keep.setdefault(backup_id, []).append(f"{label} {'-'.join(f'{p:02d}' for p in key)}")
    delete = [backup_id for backup_id, _ in entries if backup_id not in keep]
    return Decision(keep=keep, delete=delete)
