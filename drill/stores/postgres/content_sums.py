"""A table's content as one order-independent sum of its rows' hashes, computed inside the server: what a
PostgreSQL fingerprint (store.py) and the sums taken while pg_restore runs (early_sums.py) both use."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from drill.errors import StoreError

# Text output of every type must not depend on the session: the same data, the same hash.
STABLE_SESSION = ("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
                  "SET extra_float_digits = 1; SET bytea_output = 'hex'")

# Each row's 64-bit hash, summed as numeric: order-independent, and duplicated rows add up (unlike
# XOR, where two identical rows would cancel out). Tried in order, fastest first:
# The row is `r.*`, never a bare `r`, which a column named r would shadow.
# - hash_record_extended (PostgreSQL 14+): each column hashed in binary by its type's hash function,
#   no text conversion; about 3x faster than COPY TO /dev/null. Values are compared as their type
#   compares them (numeric 1.0 = 1.00). Fails for a table with a column type that has no hash
#   support (json, point, ...): that table falls back.
# - hashtextextended over the row's text form (PostgreSQL 11+), then md5 slices (any version).
_CONTENT_SUMS = (
    ("hash_record_extended", "SELECT count(*), coalesce(sum(hash_record_extended(r.*, 0)), 0) FROM {} AS r"),
    ("hashtextextended(row text)", "SELECT count(*), coalesce(sum(hashtextextended(r.*::text, 0)), 0) FROM {} AS r"),
    ("md5(row text)", "SELECT count(*), coalesce(sum(('x' || left(md5(r.*::text), 16))::bit(64)::bigint::numeric), 0)"
                      " FROM {} AS r"),
)

ContentSum = tuple[str, int, str]  # (method, row count, sum of the rows' hashes)


def content_sum(conn: psycopg.Connection[tuple[Any, ...]], table: sql.Identifier) -> ContentSum:
    """The table's rows (its inheritance children's included, as `FROM table` reads them), summed."""
    last: psycopg.Error | None = None
    for method, query in _CONTENT_SUMS:
        try:
            with conn.transaction():  # a savepoint: a method the server or a column type lacks is rolled back
                row = conn.execute(sql.SQL(query).format(table)).fetchone()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported) as exc:
            last = exc
            continue
        assert row is not None
        return method, int(row[0]), str(row[1])
    raise StoreError(f"no way to hash the rows of {table.as_string(conn)}: {last}")


def snapshot_text(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    """The connection's current snapshot (xmin:xmax:running xids): two equal texts saw the same commits."""
    function = "pg_current_snapshot" if conn.info.server_version >= 130000 else "txid_current_snapshot"
    row = conn.execute(f"SELECT {function}()::text").fetchone()
    assert row is not None
    return str(row[0])
