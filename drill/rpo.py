"""RPO arithmetic: the recovery point of a restore and the data loss it means (pure: no store, no clock).

The scenario (drill.scenario) gathers the facts (the disaster time, the newest marker that survived
the restore, the backup's consistent time) and these functions decide. Small and pure so that the
tests can pin every branch, and mutation testing can show they do (docs/testing.md).
"""

from __future__ import annotations

MARKERS = "markers"
CANARY = "canary"
BACKUP_CONSISTENT_TIME = "backup-consistent-time"
BACKUP_AGE = "backup-age"  # nothing restored: the age of the latest backup (a freshness check)


def recovery_point(preset: tuple[float, str] | None, newest_marker_at: float | None,
                   consistent_at: float, newest_canary_at: float | None = None) -> tuple[float, str]:
    """(the recovery point, how it was found): a point already known (a point-in-time target) wins, then the
    newest marker the scenario's writer left in the restored store, then the newest canary (`drill canary`)
    found in it, then the backup's consistent time."""
    if preset is not None:
        return preset
    if newest_marker_at is not None:
        return newest_marker_at, MARKERS
    if newest_canary_at is not None:
        return newest_canary_at, CANARY
    return consistent_at, BACKUP_CONSISTENT_TIME


def rpo_seconds(disaster_at: float, recovery_point_at: float) -> float:
    """The data lost: everything between the recovery point and the disaster (never negative)."""
    return max(0.0, disaster_at - recovery_point_at)


def markers_lost(last_seq: int | None, newest_surviving_seq: int | None, written: int) -> int:
    """How many markers the restore lost: those after the newest survivor; all of them when none survived."""
    if last_seq is not None and newest_surviving_seq is not None:
        return last_seq - newest_surviving_seq
    return written


def worst(current: float | None, candidate: float, current_method: str | None = None) -> bool:
    """Whether `candidate` (a restore's loss) becomes the scenario's RPO: with several restores, the largest loss
    counts; a restore always replaces the age of a backup that was only checked for freshness."""
    return current is None or candidate > current or current_method == BACKUP_AGE


def older_than_its_date(dated_at: float, newest_canary_at: float, interval: float) -> float | None:
    """How much older a restored backup's data is than its date says (seconds), when its newest canary is older
    than that date by more than one canary interval; None when the canary is recent enough."""
    gap = dated_at - newest_canary_at
    return gap if gap > interval else None
