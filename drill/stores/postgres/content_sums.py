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

# Does a column hold a value whose binary hash is an OID the restore gives anew? hash_record_extended hashes an
# enum label by its pg_enum OID and a regclass (regtype, ...) by the object's OID, and a restore into another
# database creates those objects with new OIDs: the same data would hash differently. Such a table is summed by
# its text form (the label, the object's name). Followed through arrays, domains, composite types and ranges.
_HOLDS_OIDS = """
WITH RECURSIVE used(type) AS (
    SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
  UNION
    SELECT inner_type FROM used JOIN pg_type t ON t.oid = used.type, LATERAL (
        SELECT t.typelem WHERE t.typelem <> 0
        UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0
        UNION ALL SELECT a.atttypid FROM pg_attribute a
                  WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid
    ) AS inner_types(inner_type)
)
SELECT EXISTS (SELECT 1 FROM used JOIN pg_type t ON t.oid = used.type
               WHERE t.typtype = 'e' OR (t.typnamespace = 'pg_catalog'::regnamespace AND t.typname LIKE 'reg%%'))
"""


def content_sum(conn: psycopg.Connection[tuple[Any, ...]], table: sql.Identifier) -> ContentSum:
    """The table's rows (its inheritance children's included, as `FROM table` reads them), summed."""
    last: psycopg.Error | None = None
    row = conn.execute(_HOLDS_OIDS, (table.as_string(conn),)).fetchone()
    methods = _CONTENT_SUMS[1:] if row is not None and row[0] else _CONTENT_SUMS
    for method, query in methods:
        try:
            with conn.transaction():  # a savepoint: a method the server or a column type lacks is rolled back
                row = conn.execute(sql.SQL(query).format(table)).fetchone()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported) as exc:
            last = exc
            continue
        assert row is not None
        return method, int(row[0]), str(row[1])
    raise StoreError(f"no way to hash the rows of {table.as_string(conn)}: {last}")


def commit_state(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    """The connection's snapshot (xmin:xmax:running xids) and the server's start time: two equal texts saw the same
    commits, and no crash recovery in between (which empties unlogged tables without a commit)."""
    function = "pg_current_snapshot" if conn.info.server_version >= 130000 else "txid_current_snapshot"
    row = conn.execute(f"SELECT {function}()::text || ' ' || pg_postmaster_start_time()::text").fetchone()
    assert row is not None
    return str(row[0])
