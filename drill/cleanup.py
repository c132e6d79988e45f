"""A last-in-first-out stack of clean-up actions that always runs to the end.

Every resource a drill brings into existence (a cluster, a scratch database, a writer thread)
pushes its clean-up here at the moment it exists, so success, failure and Ctrl-C all undo it.
A failing action does not stop the others; their errors are collected and reported.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class CleanupStack:
    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def push(self, description: str, action: Callable[[], object]) -> None:
        with self._lock:
            self._actions.append((description, action))

    def __len__(self) -> int:
        return len(self._actions)

    def run(self) -> list[str]:
        """Run every action, newest first. Ctrl-C while cleaning up is held off until the end."""
        errors: list[str] = []
        with deferred_sigint():
            while True:
                with self._lock:
                    if not self._actions:
                        break
                    description, action = self._actions.pop()
                try:
                    action()
                except Exception as exc:  # keep going: one failed clean-up must not leak the rest
                    log.warning("clean-up %s failed: %s", description, exc)
                    errors.append(f"{description}: {exc}")
        self.errors.extend(errors)
        return errors


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold a second Ctrl-C until clean-up is done (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.getsignal(signal.SIGINT)

    def remember(signum: int, _frame: object) -> None:
        received.append(signum)
        log.warning("Ctrl-C received during clean-up; finishing clean-up first")

    signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)
