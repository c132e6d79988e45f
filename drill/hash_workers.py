"""Worker processes for the CPU-heavy Python part of a verification while several stores are verified at once.

A whole-system restore (drill/system.py) restores and verifies the stores of a wave in threads of one
process. Most of a store's verification runs inside its own server (PostgreSQL's fingerprint query,
Redis's Lua script), but MongoDB's hashes every document in Python: that holds the interpreter lock
the other stores' threads need for their own Python work (Redis's restore pipelines, MongoDB's and
PostgreSQL's drivers), so in parallel each goes slower than alone. While `running()` is active, such
hashing is handed to a small pool of worker processes instead (`current()` gives the pool, None
outside): the thread that verifies still reads the data and compares, only the pure hashing of bytes
moves. The result is the same sums, whatever the order the batches come back in.

The workers are *spawned* (a fresh interpreter: no copy of the drill's threads, open sockets,
clean-up actions or secrets), import only the hashing module, and ignore Ctrl-C: an interrupt is the
drill's to handle, and leaving `running()` (normally or by an exception, KeyboardInterrupt included)
cancels what is queued and waits for the workers to exit, so none is left behind. A worker that dies
(killed, out of memory) makes the pool broken: the store being verified fails with a message naming it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_WORKERS = 2  # this is about the interpreter lock, not about using every core of a big machine

class Workers:
    """The pool of one `running()` block, made on first use: a whole-system restore with no store that hashes in
    Python starts no process at all (a pool's queues alone start multiprocessing's resource tracker)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the hashing workers were shut down (the drill was interrupted)")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.count, initializer=_ignore_interrupt,
                                                 mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def warm(self) -> None:
        """Start the workers now (each imports the hashing code, a fraction of a second), so that they are
        ready when the first chunk comes instead of starting then: called before the restores, whose
        waiting on servers leaves time for it."""
        pool = self.pool()
        for _ in range(self.count):  # a task with no idle worker starts one more process
            pool.submit(_nothing)

    def cancel(self) -> None:
        """Stop now (an interrupt): queued work is cancelled, later requests refused; the workers end by
        themselves once their current chunk is done (`close` waits for them)."""
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


_lock = threading.Lock()
_active: Workers | None = None


def _nothing() -> None:
    """What a warm-up asks of a worker: being started (the hashing module is imported with the first chunk)."""


def _ignore_interrupt() -> None:
    # A terminal's Ctrl-C reaches the whole process group: the drill shuts the pool down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_count() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


@contextmanager
def running(workers: int | None = None, warm: bool = False) -> Iterator[Workers]:
    """Worker processes for `current()` to hand out until the block ends; then they are shut down (queued work
    cancelled, the workers waited for), also on an error or an interrupt. `warm`: start them at once."""
    global _active
    found = Workers(workers or worker_count())
    with _lock:
        previous, _active = _active, found
    try:
        if warm:
            found.warm()
        yield found
    finally:
        with _lock:
            _active = previous
        found.close()


def current() -> ProcessPoolExecutor | None:
    """The pool of the `running()` block in progress, if any (any thread of the process may use it); made on
    the first request."""
    with _lock:
        found = _active
    return found.pool() if found is not None else None


def map_ahead(pool: ProcessPoolExecutor, function: Callable[[Item], Result], items: Iterable[Item],
              ahead: int = 2 * MAX_WORKERS, started: Callable[[], None] | None = None) -> Iterator[Result]:
    """function(item) for every item, computed by the pool's workers, at most `ahead` items in flight (memory
    stays bounded whatever the number of items); results in the items' order. `started` is called once,
    after the first item was handed to a worker. Leaving early cancels what was not started."""
    pending: deque[Future[Result]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if started is not None:
                started()
                started = None
            while len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
