"""Independent oracles: what a store holds, read by the server's own tools or plain client libraries.

Tests judge drill with these, never with drill's own fingerprint, so a bug in the fingerprint (or in
anything else of drill's) cannot confirm itself. Nothing here imports drill. Each function returns
plain data that compares with `==` and prints readably in an assertion failure.

- PostgreSQL: per table, the row count and an md5 of its rows' text forms in sorted order (psql),
  plus the catalog: columns, constraints, indexes, views, sequences and owners.
- Redis: per logical database and key, the type, the value read back by type, and the absolute
  expiry (PEXPIRETIME); `debug_digest` is the server's own digest where DEBUG is enabled.
- MongoDB: per collection, the count and a sha256 of the sorted raw BSON documents (so 3 and 3.0,
  and field order, count), plus the index keys.
- GCS: per object, size, md5, crc32c, content type and metadata.
- Firestore: every document's path and fields, values tagged with their type (3 vs 3.0, timestamps).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol


class Psql(Protocol):
    """A server the oracle reads with psql (LivePostgres, or the backup tests' production stand-in)."""

    def psql(self, sql: str, database: str) -> str: ...


# -- PostgreSQL -------------------------------------------------------------------------------------------

_USER_TABLES = ("SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")


def pg_tables(pg: Psql, database: str) -> dict[str, tuple[int, str]]:
    """Each user table: (row count, md5 of its rows as text, sorted)."""
    found: dict[str, tuple[int, str]] = {}
    for table in pg.psql(_USER_TABLES, database).splitlines():
        row = pg.psql(f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                      f"FROM {table} t", database)
        count, digest = row.split("|")
        found[table] = (int(count), digest)
    return found


_CATALOG_QUERIES = {
    "columns": "SELECT table_schema, table_name, column_name, data_type, is_nullable, coalesce(column_default, '') "
               "FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
               "ORDER BY 1, 2, 3",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
                   "ORDER BY 1, 2",
    "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
               "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "views": "SELECT schemaname, viewname, definition FROM pg_views "
             "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "sequences": "SELECT schemaname, sequencename, coalesce(last_value::text, '') FROM pg_sequences ORDER BY 1, 2",
    "owners": "SELECT schemaname, tablename, tableowner FROM pg_tables "
              "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
}


def pg_catalog(pg: Psql, database: str) -> dict[str, list[str]]:
    """Columns, constraints, indexes, views, sequences (with their values) and table owners."""
    return {name: pg.psql(query, database).splitlines() for name, query in _CATALOG_QUERIES.items()}


def pg_state(pg: Psql, database: str) -> dict[str, Any]:
    """Everything a restore must bring back: contents and catalog."""
    return {"tables": pg_tables(pg, database), "catalog": pg_catalog(pg, database)}


# -- Redis ------------------------------------------------------------------------------------------------


def _redis_value(client: Any, key: bytes, kind: str) -> Any:
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "hash":
        return sorted(client.hgetall(key).items())
    if kind == "stream":
        return client.xrange(key)
    raise AssertionError(f"the oracle cannot read a Redis {kind} (key {key!r})")


def redis_state(client_for_db: Any, databases: range = range(16)) -> dict[int, dict[bytes, tuple[str, Any, int]]]:
    """Per non-empty logical database: key -> (type, value, absolute expiry in ms or -1).

    `client_for_db(db)` returns a redis-py client on that database (e.g. `LiveRedis.client`).
    """
    state: dict[int, dict[bytes, tuple[str, Any, int]]] = {}
    for db in databases:
        client = client_for_db(db)
        keys = sorted(client.scan_iter(count=1000))
        if not keys:
            continue
        found = {}
        for key in keys:
            kind = client.type(key).decode()
            found[key] = (kind, _redis_value(client, key, kind), int(client.execute_command("PEXPIRETIME", key)))
        state[db] = found
    return state


def debug_digest(client: Any) -> str:
    """The server's own digest of its whole dataset (needs enable-debug-command)."""
    value = client.execute_command("DEBUG", "DIGEST")
    return value.decode() if isinstance(value, bytes) else str(value)


# -- MongoDB ----------------------------------------------------------------------------------------------


def mongo_state(client: Any, database: str) -> dict[str, Any]:
    """Per collection: (count, sha256 of the sorted raw BSON documents, sorted index keys)."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    raw = CodecOptions(document_class=RawBSONDocument)
    db = client[database]
    state: dict[str, Any] = {}
    for name in sorted(db.list_collection_names()):
        documents = sorted(doc.raw for doc in db.get_collection(name, codec_options=raw).find())
        digest = hashlib.sha256(b"".join(documents)).hexdigest()
        # nx-27017 keeps neither custom index names nor descending directions: compare fields and uniqueness.
        indexes = sorted((tuple(field for field, _ in spec["key"]), bool(spec.get("unique", False)))
                         for spec in db[name].index_information().values())
        state[name] = (len(documents), digest, indexes)
    return state


# -- GCS --------------------------------------------------------------------------------------------------


def gcs_state(client: Any, bucket: str) -> dict[str, tuple[int, str, str, str, dict[str, str]]]:
    """Per object: (size, md5, crc32c, content type, metadata)."""
    return {blob.name: (int(blob.size), blob.md5_hash, blob.crc32c, blob.content_type or "", dict(blob.metadata or {}))
            for blob in client.list_blobs(bucket)}


# -- Firestore --------------------------------------------------------------------------------------------


def _tagged(value: Any) -> Any:
    """A Firestore value with its type kept (int 3 and float 3.0 differ; a timestamp is not a string)."""
    if isinstance(value, dict):
        return ("map", sorted((k, _tagged(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", [_tagged(v) for v in value])
    if hasattr(value, "path") and hasattr(value, "parent"):  # a DocumentReference
        return ("reference", value.path)
    if hasattr(value, "latitude"):
        return ("geopoint", value.latitude, value.longitude)
    if hasattr(value, "isoformat"):
        return ("timestamp", value.isoformat())
    return (type(value).__name__, value)


def firestore_state(client: Any) -> dict[str, Any]:
    """Every document in the database, subcollections included: path -> tagged fields."""
    state: dict[str, Any] = {}

    def walk(collections: Any) -> None:
        for collection in collections:
            for snapshot in collection.stream():
                state[snapshot.reference.path] = _tagged(snapshot.to_dict() or {})
                walk(snapshot.reference.collections())
            # Documents that only hold subcollections do not stream: reach them through list_documents.
            for reference in collection.list_documents():
                if reference.path not in state:
                    walk(reference.collections())

    walk(client.collections())
    return state
