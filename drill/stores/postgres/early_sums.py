"""Content sums of a restored database's tables, each taken as soon as `pg_restore -j` has loaded that table's
data, while its other jobs are still at work: the verification fingerprint after the restore then reuses them
instead of reading every table again (issue 18: `pg_restore -j 2` leaves a core idle part of the time).

When a sum may stand in for reading the table again, and why that is exact:

- **Only a database drill has just created for the restore** (the restore's `into`, or the in-place restore of
  a store drill started itself): no one else knows it yet. Never the in-place restore of a live store, whose
  clients may reconnect while it is restored.
- **Only once its data is complete.** pg_restore prints `finished item N TABLE DATA <table>` after the table's
  COPY committed; N is checked against the archive's own table of contents (`pg_restore --list`).
- **Only when nothing pg_restore runs later can write to it.** Indexes, constraints, rules, policies, grants
  and comments do not write; a table's own triggers and rules are only created after its data, and pg_restore
  writes no table twice; a subscription is dumped disabled. What can write is code that runs on another
  item: an event trigger (fired by a later CREATE or REFRESH), a materialized view's refresh (its query may
  call any function), a trigger on a partitioned table (it fires for rows loaded into its partitions).
  An archive holding an EVENT TRIGGER or MATERIALIZED VIEW DATA item gets no early sums at all, nor one
  holding a TRIGGER once the database has a partitioned table.
- **Only plain tables with one name**: not a partition, not a table with inheritance children (`FROM parent`
  reads its children's rows too), not an unlogged one, and not when another schema holds a table or foreign
  table of that name (pg_restore's line names the table, not its schema).
- **Only if no transaction committed since.** Right after pg_restore exits, the server's snapshot (and its
  start time) is recorded; the fingerprint's own transaction must see exactly the same, on the whole server,
  or every table is read again. Any write after the restore, a planted fault included, therefore falls back
  to the full fingerprint.
- **Only tables the fingerprint's own reading would sum the same**: not one with row-level security switched on
  by the restore after its data was loaded, nor one the connecting role may no longer read.
- **Used once**: the first fingerprint after the restore; any later one reads every table.

Not covered: a CHECK constraint or a column default whose function writes to another table while a later
table's rows are loaded, and a background worker of an extension that writes into the new database while it
is restored. Both run code the archive's table of contents does not show.
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

from drill.stores.postgres.content_sums import STABLE_SESSION, ContentSum, commit_state, content_sum
from drill.stores.postgres.server import PgServer

# pg_restore -j's leader prints these as it hands an item to a job and once the job's work is committed; for a
# table's data, the rest of the line is the table's name (its schema is not printed). A program name and its
# message are two writes, so another process's line may come between them: any number of prefixes is skipped,
# and the message is matched from its start (a name holding "finished item" cannot fake one).
_ITEM = re.compile(r"(?:pg_restore: )*(launching|finished) item (\d+) (.*)$")
# A line of `pg_restore --list`: the item's dump id, its catalog ids, then its kind and names.
_TOC_LINE = re.compile(r"(\d+); \d+ \d+ (.*)$")
# Items whose code may write to a table pg_restore has already loaded (the module's docstring).
_WRITES_LATER = ("EVENT TRIGGER ", "MATERIALIZED VIEW DATA ")

_CANDIDATES = """
SELECT c.oid, n.nspname, c.relkind <> 'r' OR c.relispartition OR c.relhassubclass OR c.relpersistence = 'u'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
"""
_STILL_PLAIN = """
SELECT oid FROM pg_class
WHERE oid = ANY(%s) AND relkind = 'r' AND NOT relispartition AND NOT relhassubclass AND NOT relrowsecurity
  AND relpersistence <> 'u' AND has_table_privilege(oid, 'SELECT') AND has_schema_privilege(relnamespace, 'USAGE')
"""
_PARTITIONED = "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relkind = 'p')"


@dataclass(frozen=True)
class RestorePlan:
    """What the archive's table of contents says early sums need: the dump ids of its tables' data, and whether
    it has triggers (which rule the sums out once the database has a partitioned table)."""

    table_data: frozenset[int]
    triggers: bool

    @classmethod
    def of(cls, toc: str) -> RestorePlan | None:
        """The plan for an archive whose `pg_restore --list` is `toc`; None when no sum may stand in."""
        table_data: set[int] = set()
        triggers = False
        for line in toc.splitlines():
            item = _TOC_LINE.match(line)
            if item is None:
                continue
            kind = item.group(2)
            if kind.startswith(_WRITES_LATER):
                return None
            if kind.startswith("TABLE DATA "):
                table_data.add(int(item.group(1)))
            triggers = triggers or kind.startswith("TRIGGER ")
        return cls(frozenset(table_data), triggers)


@dataclass(frozen=True)
class EarlySums:
    """The sums taken while pg_restore ran, and the server's commit state (content_sums.commit_state) when it had
    finished."""

    snapshot: str
    sums: Mapping[int, ContentSum]  # table oid -> its content sum

    def usable_in(self, conn: psycopg.Connection[tuple[Any, ...]]) -> dict[int, ContentSum]:
        """The sums that stand for their tables in `conn`'s transaction: none unless it sees exactly the
        commits there were when pg_restore had finished."""
        if not self.sums or commit_state(conn) != self.snapshot:
            return {}
        still = {int(row[0]) for row in conn.execute(_STILL_PLAIN, (list(self.sums),))}
        return {oid: total for oid, total in self.sums.items() if oid in still}


class EarlyTableSums:
    """Fed pg_restore's --verbose lines; sums the tables whose data is loaded, one at a time on its own
    connection in a thread, while pg_restore goes on. `finish` (pg_restore succeeded) or `abandon` (it did not)
    ends it.

    A sum only starts while pg_restore runs fewer items than it has jobs, that is while a core it would use is
    idle (the tail of a restore: one constraint or index left on its largest table), and reads with no parallel
    workers, so that it takes that core and no other: drill never runs more than `jobs` backends on the
    server, and summing while every job is busy would only slow the restore down by as much as it saves. When
    pg_restore exits, a sum under way is cancelled and the tables not summed are left to the fingerprint, which
    reads them with parallel workers: the restore (and its measured RTO) never waits for a sum.
    """

    # How long a core must stay idle before a sum takes it: pg_restore prints `finished item` just before it
    # launches the next ready item, and that gap is not idle time.
    SETTLE_SECONDS = 0.1
    # False: `finish` waits for a sum under way and sums the tables still unsummed before it returns (the tests
    # set it, to have every table summed whatever the timing).
    LEAVE_UNSUMMED_TO_FINGERPRINT = True

    def __init__(self, server: PgServer, database: str, jobs: int, plan: RestorePlan) -> None:
        self._server = server
        self._database = database
        self._jobs = jobs
        self._plan = plan
        self._state = threading.Condition()
        self._loaded: list[str] = []  # tables whose data is loaded, not yet summed
        self._running = 0  # items pg_restore's jobs are running
        self._changed_at = time.monotonic()  # when an item was last launched or finished
        self._ended = False
        self._stopped = False  # abandoned, or cancelled at the end: sum nothing more
        self._sums: dict[int, ContentSum] = {}
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._broken = False
        self._thread = threading.Thread(target=self._work, name=f"early sums of {database}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        item = _ITEM.match(text.rstrip("\n"))
        if item is None:
            return
        with self._state:
            if item.group(1) == "launching":
                self._running += 1
            else:
                self._running = max(0, self._running - 1)
                data = item.group(3)
                if int(item.group(2)) in self._plan.table_data and data.startswith("TABLE DATA "):
                    self._loaded.append(data.removeprefix("TABLE DATA "))
            self._changed_at = time.monotonic()
            self._state.notify_all()

    def finish(self) -> EarlySums | None:
        """After pg_restore exited 0: the sums taken and the commit state they stand for (a sum under way is
        cancelled); None when summing failed."""
        if self.LEAVE_UNSUMMED_TO_FINGERPRINT:
            self._stop()
        self._end(timeout=30)
        if self._broken or self._thread.is_alive():
            return None
        with self._server.connect(self._database) as conn:
            return EarlySums(commit_state(conn), dict(self._sums))

    def abandon(self) -> None:
        """pg_restore failed or was interrupted: stop now (a sum under way is cancelled), keep nothing."""
        self._stop()
        self._end(timeout=10)

    def _stop(self) -> None:
        with self._state:
            self._stopped = True
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=5)

    def _end(self, timeout: float) -> None:
        with self._state:
            self._ended = True
            self._state.notify_all()
        self._thread.join(timeout)

    def _idle_core(self) -> bool:
        return bool(self._loaded) and self._running < self._jobs

    def _next_table(self) -> str | None:
        """The next loaded table, once a core has been idle for SETTLE_SECONDS; None when pg_restore has ended."""
        with self._state:
            while not self._ended and not self._stopped:
                if not self._idle_core():
                    self._state.wait_for(lambda: self._ended or self._stopped or self._idle_core())
                    continue
                settling = self.SETTLE_SECONDS - (time.monotonic() - self._changed_at)
                if settling <= 0:
                    return self._loaded.pop(0)
                self._state.wait(settling)  # a line in the meantime may launch the next item
            if self._loaded and not self._stopped:  # LEAVE_UNSUMMED_TO_FINGERPRINT is False
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
            if self._plan.triggers and conn.execute(_PARTITIONED).fetchone() == (True,):
                self._broken = True  # a trigger may fire on rows loaded into a partition: no sum stands in
                return
            candidates = conn.execute(_CANDIDATES, (table,)).fetchall()
            if len(candidates) != 1 or candidates[0][2]:
                return  # two tables of that name, or not a plain one: the fingerprint reads it
            oid, schema = int(candidates[0][0]), str(candidates[0][1])
            if self._stopped:
                return
            with conn.transaction():
                summed = content_sum(conn, sql.Identifier(schema, table))
            with self._state:
                if not self._stopped:  # a sum cancelled at the end may still have returned
                    self._sums[oid] = summed
        except Exception:
            self._broken = self._conn is None or self._conn.closed or self._conn.broken
