"""A collection's documents read one batch ahead, so that the server's time to hand them out and drill's
hashing overlap.

A fingerprint spends most of its time waiting for the server (bench/store_bench.py: the wire server hands
out a few thousand documents a second) and the rest hashing in Python. A thread fetches the next raw BSON
batch while the caller hashes the current one: pymongo releases the interpreter lock while it waits on the
socket, so the two really run at once, and the fingerprint takes about the longer of the two instead of
their sum. The documents are the same, in the same order; only the waiting moves.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pymongo.collection import Collection

_PLAIN = CodecOptions(document_class=dict)
_DONE = object()
AHEAD = 2  # batches fetched ahead: enough to hide the server's latency, bounded memory (a batch <= 16 MB)
_POLL = 0.2  # seconds between looks at `stop` while the queue is full


def documents_ahead(collection: Collection[Any], ahead: int = AHEAD) -> Iterator[dict[str, Any]]:
    """Every document of `collection` as a plain dict, the next batch fetched by a thread while this one is
    used. An error in the fetching thread (a PyMongoError) is raised here; leaving the loop early stops the
    thread and closes its cursor."""
    with contextlib.closing(batches_ahead(collection, ahead)) as batches:  # closed at once when left early
        for batch in batches:
            yield from bson.decode_all(batch, codec_options=_PLAIN)


def batches_ahead(collection: Collection[Any], ahead: int = AHEAD,
                  batch_size: int = 0) -> Generator[bytes, None, None]:
    """The raw BSON batches of `collection` (documents back to back), the next fetched by a thread while this
    one is used; `batch_size` documents per batch (0: the server's choice, up to 16 MB)."""
    batches: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand(item: object) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            with collection.find_raw_batches(batch_size=batch_size) as cursor:
                for batch in cursor:
                    if not hand(batch):
                        return
        except BaseException as exc:  # handed to the reader, which raises it
            hand(exc)
            return
        hand(_DONE)

    thread = threading.Thread(target=fetch, name=f"drill-prefetch-{collection.name}", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        thread.join()


# What a worker process hashes at a time (drill/hash_workers.py): the server's batches (about a hundred
# documents each on the wire server) joined up to this size, so that the hand-overs between processes,
# each a few wake-ups that a busy machine makes slow, are few; two chunks per worker in flight.
WORKER_CHUNK = 1 << 20


def joined(batches: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Raw BSON batches joined into chunks of at least `size` bytes (the last one smaller): documents back to
    back, as one batch."""
    pending: list[bytes] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += len(batch)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)
