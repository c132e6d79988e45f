"""Content sums of a restored database's tables, each taken as soon as `pg_restore -j` has loaded that table's
data, while its other jobs are still at work: the verification fingerprint after the restore then reuses them
instead of reading every table again (issue 18: `pg_restore -j 2` leaves a core idle part of the time).

When a sum may stand in for reading the table again, and why that is exact:

- **Only a database drill has just created for the restore** (the restore's `into`, or the in-place restore of
  a store drill started itself): no one else knows it yet. Never the in-place restore of a live store, whose
  clients may reconnect while it is restored.
- **Only once its data is complete.** pg_restore prints `finished item N TABLE DATA <table>` after the table's
  COPY committed. Nothing pg_restore runs after that changes a table's rows: indexes, constraints, triggers,
  rules, policies, grants and comments do not, and a subscription is dumped disabled.
- **Only plain tables with one name**: not a partition, not a table with inheritance children (`FROM parent`
  reads its children's rows too), and not when two schemas hold a table of that name (pg_restore's line names
  the table, not its schema).
- **Only if no transaction committed since.** Right after pg_restore exits, the server's snapshot is recorded;
  the fingerprint's own transaction must see exactly the same one (the same next transaction id and the same
  running ones, on the whole server), or every table is read again. Any write after the restore, a planted
  fault included, therefore falls back to the full fingerprint.
- **Only tables the fingerprint's own reading would sum the same**: not one with row-level security switched on
  by the restore after its data was loaded, nor one the connecting role may no longer read.
- **Used once**: the first fingerprint after the restore; any later one reads every table.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from drill.stores.postgres.content_sums import STABLE_SESSION, ContentSum, content_sum, snapshot_text
from drill.stores.postgres.server import PgServer

# pg_restore -j's leader prints these as it hands an item to a job and as the job's work is committed; for a
# table's data, the rest of the line is the table's name (its schema is not printed). search, not match: lines
# of parallel workers may arrive with another's text in front.
_LAUNCHING = re.compile(r"launching item \d+ ")
_FINISHED = re.compile(r"finished item \d+ ")
_DATA_LOADED = re.compile(r"finished item \d+ TABLE DATA (.+)$")

_CANDIDATES = """
SELECT c.oid, n.nspname, c.relispartition OR c.relhassubclass
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
"""
_STILL_PLAIN = """
SELECT oid FROM pg_class
WHERE oid = ANY(%s) AND relkind = 'r' AND NOT relispartition AND NOT relhassubclass AND NOT relrowsecurity
  AND has_table_privilege(oid, 'SELECT')
"""


@dataclass(frozen=True)
class EarlySums:
    """The sums taken while pg_restore ran, and the server's snapshot when it had finished."""

    snapshot: str
    sums: Mapping[int, ContentSum]  # table oid -> its content sum

    def usable_in(self, conn: psycopg.Connection[tuple[Any, ...]]) -> dict[int, ContentSum]:
        """The sums that stand for their tables in `conn`'s transaction: none unless it sees exactly the
        commits there were when pg_restore had finished."""
        if not self.sums or snapshot_text(conn) != self.snapshot:
            return {}
        still = {int(row[0]) for row in conn.execute(_STILL_PLAIN, (list(self.sums),))}
        return {oid: total for oid, total in self.sums.items() if oid in still}


class EarlyTableSums:
    """Fed pg_restore's --verbose lines; sums the tables whose data is loaded, one at a time on its own
    connection in a thread, while pg_restore goes on. `finish` (pg_restore succeeded) or `abandon` (it did not)
    ends it.

    A sum only starts while pg_restore runs fewer items than it has jobs, that is while a core it would use is
    idle (the tail of a restore: one constraint or index left on its largest table), and reads with no parallel
    workers, so that it takes that core and no other: summing while every job is busy only slows the restore
    down by as much as it saves. A table not summed by the time pg_restore exits is left to the fingerprint,
    which reads it with parallel workers.
    """

    # How long a core must stay idle before a sum takes it: pg_restore prints `finished item` just before it
    # launches the next ready item, and that gap is not idle time.
    SETTLE_SECONDS = 0.1
    # False: the tables still unsummed when pg_restore exits are summed before `finish` returns (the tests set it,
    # to have every table summed whatever the timing; it is slower, a sum reading with one core).
    LEAVE_UNSUMMED_TO_FINGERPRINT = True

    def __init__(self, server: PgServer, database: str, jobs: int) -> None:
        self._server = server
        self._database = database
        self._jobs = jobs
        self._state = threading.Condition()
        self._loaded: list[str] = []  # tables whose data is loaded, not yet summed
        self._running = 0  # items pg_restore's jobs are running
        self._changed_at = time.monotonic()  # when an item was last launched or finished
        self._ended = False
        self._abandoned = False
        self._sums: dict[int, ContentSum] = {}
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._broken = False
        self._thread = threading.Thread(target=self._work, name=f"early sums of {database}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        with self._state:
            if _LAUNCHING.search(text):
                self._running += 1
            elif _FINISHED.search(text):
                self._running = max(0, self._running - 1)
                if loaded := _DATA_LOADED.search(text):
                    self._loaded.append(loaded.group(1))
            else:
                return
            self._changed_at = time.monotonic()
            self._state.notify_all()

    def finish(self) -> EarlySums | None:
        """After pg_restore exited 0: the sums taken (once a sum under way has ended) and the snapshot they stand
        for; None when summing failed."""
        self._end()
        if self._broken:
            return None
        with self._server.connect(self._database) as conn:
            return EarlySums(snapshot_text(conn), dict(self._sums))

    def abandon(self) -> None:
        """pg_restore failed or was interrupted: stop now (a sum under way is cancelled), keep nothing."""
        with self._state:
            self._abandoned = True
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=5)
        self._end(timeout=10)

    def _end(self, timeout: float | None = None) -> None:
        with self._state:
            self._ended = True
            self._state.notify_all()
        self._thread.join(timeout)

    def _idle_core(self) -> bool:
        return bool(self._loaded) and self._running < self._jobs

    def _next_table(self) -> str | None:
        """The next loaded table, once a core has been idle for SETTLE_SECONDS; None when pg_restore has ended."""
        with self._state:
            while not self._ended:
                if not self._idle_core():
                    self._state.wait_for(lambda: self._ended or self._idle_core())
                    continue
                settling = self.SETTLE_SECONDS - (time.monotonic() - self._changed_at)
                if settling <= 0:
                    return self._loaded.pop(0)
                self._state.wait(settling)  # a line in the meantime may launch the next item
            if self._loaded and not self._abandoned and not self.LEAVE_UNSUMMED_TO_FINGERPRINT:
                return self._loaded.pop(0)
            return None

    def _work(self) -> None:
        try:
            while not self._broken and (table := self._next_table()) is not None:
                self._sum(table)
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()

    def _sum(self, table: str) -> None:
        try:
            if self._conn is None:
                self._conn = self._server.connect(self._database)
                self._conn.execute(STABLE_SESSION)
                self._conn.execute("SET max_parallel_workers_per_gather = 0")  # one core: the idle one
            conn = self._conn
            candidates = conn.execute(_CANDIDATES, (table,)).fetchall()
            if len(candidates) != 1 or candidates[0][2]:
                return  # two tables of that name, a partition or a parent: the fingerprint reads it
            oid, schema = int(candidates[0][0]), str(candidates[0][1])
            with conn.transaction():
                self._sums[oid] = content_sum(conn, sql.Identifier(schema, table))
        except Exception:
            self._broken = self._conn is None or self._conn.closed or self._conn.broken
