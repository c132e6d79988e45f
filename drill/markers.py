"""The RPO marker writer: sequenced, timestamped markers written into a store on an interval.

After a restore, the newest marker that survived is the real recovery point: RPO = disaster time
minus that marker's time. The writer runs in a background thread until the disaster step stops it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable

from drill.errors import StoreError
from drill.stores.base import Marker, MarkerSink


def marker_file_name(marker: Marker) -> str:
    """The name of a marker kept as an empty file (the files and volume kinds): its sequence number and
    its time, so the name alone carries the marker."""
    return f"{marker.seq:012d}-{marker.written_at!r}"


def newest_marker(names: Iterable[str]) -> Marker | None:
    """The marker with the highest sequence number among file names made by `marker_file_name`; names
    that are not markers are passed over."""
    best: Marker | None = None
    for name in names:
        seq, _, written = name.partition("-")
        with contextlib.suppress(ValueError):
            marker = Marker(int(seq), float(written))
            if best is None or marker.seq > best.seq:
                best = marker
    return best


class MarkerWriter:
    def __init__(self, sink: MarkerSink, interval: float, store: str) -> None:
        if interval <= 0:
            raise StoreError("the marker interval must be above zero")
        self.sink = sink
        self.interval = interval
        self.store = store
        self.written: list[Marker] = []
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._first_seq = 1
        self._stop = threading.Event()
        self._first = threading.Event()  # set once the first marker is written (or the writer failed)
        self._thread = threading.Thread(target=self._run, name=f"drill-markers-{store}", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def last(self) -> Marker | None:
        return self.written[-1] if self.written else None

    def start(self) -> None:
        """Start writing; return once the first marker is in the store, so that a backup taken in the next step
        holds it (otherwise whether the RPO comes from markers would depend on thread scheduling)."""
        self.sink.prepare()
        # Markers already in the store (canaries `drill canary` wrote, an earlier drill's) keep their numbers:
        # this writer's continue after the newest, so the newest marker is always the latest written.
        existing = self.sink.newest()
        self._first_seq = existing.seq + 1 if existing is not None else 1
        self.started_at = time.time()
        self._thread.start()
        self._first.wait(timeout=max(30.0, self.interval * 3))
        if self.error is not None:
            raise StoreError(f"the marker writer of {self.store!r} failed on its first marker: {self.error}") \
                from self.error

    def _run(self) -> None:
        seq = self._first_seq - 1
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                seq += 1
                marker = Marker(seq, time.time())
                self.sink.write(marker)
                self.written.append(marker)
                self._first.set()
                # Keep the cadence: the wait shrinks by however long the write took.
                next_due += self.interval
                self._stop.wait(max(0.0, next_due - time.monotonic()))
        except BaseException as exc:  # surfaced by stop(): a writer that died silently would fake an RPO
            self.error = exc
            self._first.set()

    def stop(self) -> None:
        """Stop writing and wait for the thread; raises if the writer had failed."""
        if self.stopped_at is None:
            self.stopped_at = time.time()  # when the writes stopped being asked for (not when the thread ended)
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(timeout=max(5.0, self.interval * 3))
            self.sink.close()
        if self.error is not None:
            raise StoreError(f"the marker writer of {self.store!r} failed after {len(self.written)} markers: "
                             f"{self.error}") from self.error

    def evidence(self) -> dict[str, object]:
        return {"store": self.store, "interval_seconds": self.interval, "written": len(self.written),
                "first_at": self.written[0].written_at if self.written else None,
                "last_at": self.last.written_at if self.last else None,
                "last_seq": self.last.seq if self.last else None,
                "started_at": self.started_at, "stopped_at": self.stopped_at}
