"""What a running drill shows: the scenario, the phase, and progress of long work (throttled)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from drill.clock import Phase
from drill.durations import format_duration
from drill.redact import redact_text

Writer = Callable[[str], None]


class Reporter:
    """Writes progress lines. `write` is swappable so pytest's capture can be bypassed."""

    def __init__(self, write: Writer | None = None, *, quiet: bool = False, throttle: float = 1.0) -> None:
        self._write = write or _stderr_writer(sys.stderr)
        self.quiet = quiet
        self.throttle = throttle
        self._last_info = 0.0

    def line(self, text: str) -> None:
        if not self.quiet:
            self._write(redact_text(text))

    def scenario_start(self, location: str, name: str) -> None:
        self.line(f"▶ {name}  ({location})")

    def phase_start(self, phase: Phase) -> None:
        target = f" {phase.store}" if phase.store else ""
        self.line(f"  · {phase.name}{target} …")
        self._last_info = time.monotonic()

    def phase_end(self, phase: Phase) -> None:
        target = f" {phase.store}" if phase.store else ""
        mark = "done" if phase.status == "passed" else "FAILED"
        rto = "  [RTO clock]" if phase.in_rto else ""
        self.line(f"  · {phase.name}{target} {mark} in {format_duration(phase.seconds)}{rto}")

    def info(self, text: str, *, force: bool = False) -> None:
        """Progress of long work: at most one line per `throttle` seconds unless forced."""
        now = time.monotonic()
        if force or now - self._last_info >= self.throttle:
            self._last_info = now
            self.line(f"      {text}")

    def scenario_end(self, status: str, detail: str) -> None:
        mark = {"passed": "✓", "failed": "✗", "error": "✗", "interrupted": "⚠"}.get(status, "·")
        self.line(f"  {mark} {status}  {detail}")


def _stderr_writer(stream: TextIO) -> Writer:
    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    return write
