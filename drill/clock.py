"""The recovery clock: phases with timestamps, RTO from the disaster to a verified restore.

Wall-clock timestamps (for the report and for RPO, which compares against marker times) come
from time.time(); durations come from time.monotonic() so that a clock step cannot distort them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Phase:
    name: str  # provision | seed | backup | disaster | restore | replay | verify | ...
    store: str | None
    started_at: float  # epoch seconds
    seconds: float | None = None  # None while running
    in_rto: bool = False
    status: str = "running"  # running | passed | failed

    @property
    def ended_at(self) -> float | None:
        return None if self.seconds is None else self.started_at + self.seconds


PhaseListener = Callable[[Phase], None]


class RecoveryClock:
    """Starts at the disaster (or at the first restore when no disaster step ran); stops when verified."""

    def __init__(self, on_phase_start: PhaseListener | None = None,
                 on_phase_end: PhaseListener | None = None) -> None:
        self.phases: list[Phase] = []
        self.disaster_at: float | None = None  # epoch: the moment the data was lost
        self._start_mono: float | None = None
        self._stop_mono: float | None = None
        self._on_start = on_phase_start
        self._on_end = on_phase_end

    @property
    def running(self) -> bool:
        return self._start_mono is not None and self._stop_mono is None

    @property
    def started(self) -> bool:
        return self._start_mono is not None

    def start(self) -> None:
        """Start the RTO clock now (idempotent: the first disaster or restore wins)."""
        if self._start_mono is None:
            self._start_mono = time.monotonic()
            self.disaster_at = time.time()

    def stop(self) -> None:
        """Stop at a verified restore; a later verification moves the stop forward."""
        if self._start_mono is not None:
            self._stop_mono = time.monotonic()

    def rto(self) -> float | None:
        """Seconds from the disaster to the verified restore; up to now if not yet verified."""
        if self._start_mono is None:
            return None
        end = self._stop_mono if self._stop_mono is not None else time.monotonic()
        return end - self._start_mono

    @contextmanager
    def phase(self, name: str, store: str | None = None) -> Iterator[Phase]:
        current = Phase(name=name, store=store, started_at=time.time(), in_rto=self.started)
        self.phases.append(current)
        if self._on_start:
            self._on_start(current)
        began = time.monotonic()
        try:
            yield current
        except BaseException:
            current.status = "failed"
            raise
        else:
            current.status = "passed"
        finally:
            current.seconds = time.monotonic() - began
            if self._on_end:
                self._on_end(current)
