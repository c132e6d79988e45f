"""Canaries: small timestamped writes into a live store, so that a backup's data can say when it is from.

A backup's file name says when it claims to be from; only the data can say when it really is.
`drill canary STORE` (run by cron next to the backup's cron) writes one marker into the store, in
the same place the RPO marker writer uses (a row of drill_markers, a document, the Redis sorted set
drill:markers, an object or a file; every fingerprint and count leaves them out). When drill
restores a production backup, the newest canary in the restored copy is its real recovery point
(`rpo_method` "canary"). A canary older than the backup's date by more than one canary interval
means the data is older than the name: a replayed or stale snapshot behind a fresh file name.
"""

from __future__ import annotations

import time

from drill import rpo
from drill.durations import format_duration
from drill.errors import VerificationError
from drill.results import iso
from drill.stores.base import BackupArtifact, Marker, Store

DEFAULT_INTERVAL = 3600.0  # the runbook's hourly cron, when a store sets no canary_interval


def write(store: Store) -> Marker:
    """One canary, numbered after the newest marker the store holds, stamped with this machine's clock."""
    store.require_writes("write a canary into")
    sink = store.markers()
    sink.prepare()
    try:
        newest = sink.newest()
        marker = Marker(newest.seq + 1 if newest is not None else 1, time.time())
        sink.write(marker)
    finally:
        sink.close()
    return marker


def interval_of(store: Store) -> float:
    return store.config.canary_interval or DEFAULT_INTERVAL


def check_against_date(store: str, artifact: BackupArtifact, canary: Marker, interval: float) -> None:
    """VerificationError when the newest canary in a restored backup is older than the backup's date by more
    than one canary interval: the data is older than the name (or the date) says."""
    gap = rpo.older_than_its_date(artifact.consistent_at, canary.written_at, interval)
    if gap is not None:
        raise VerificationError(
            f"the backup is older than its name says: {artifact.path} of {store!r} is dated "
            f"{iso(artifact.consistent_at)}, but the newest canary in it was written at {iso(canary.written_at)}, "
            f"{format_duration(gap)} earlier (canaries are written every {format_duration(interval)}): a replayed "
            f"or stale snapshot behind a fresh name, or `drill canary {store}` stopped running")
