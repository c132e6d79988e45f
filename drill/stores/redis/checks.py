"""Redis counts beyond DBSIZE (keys with a TTL, keys matching a pattern) and the self-test's planted change.

Both counts SCAN every logical database, leaving out drill's marker key, as `count` does. The
planted change alters one key's value in place (its expiry kept) and is undone with RESTORE of the
key's DUMP payload at its absolute expiry, so the key is byte-for-byte what it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from drill.errors import StoreError
from drill.stores.capabilities import PlantedChange
from drill.stores.redis.commands import MARKER_KEY, SCAN_BATCH, _as_int, _cmd

if TYPE_CHECKING:
    from drill.stores.redis.store import RedisStore

_FIELD = b"~drill-self-test"  # what the self-test adds to a hash, set or sorted set, or appends to a value


def count_expiring(store: RedisStore) -> int:
    """Keys that expire on their own (PTTL >= 0), in every logical database."""

    def count(client: redis.Redis) -> int:
        found = 0
        batch: list[bytes] = []
        for key in client.scan_iter(count=SCAN_BATCH):
            if key != MARKER_KEY:
                batch.append(key)
            if len(batch) >= SCAN_BATCH:
                found += _expiring(client, batch)
                batch = []
        return found + _expiring(client, batch)

    return sum(int(store._call(count, db)) for db in store.databases())


def _expiring(client: redis.Redis, keys: list[bytes]) -> int:
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    return sum(1 for ttl in pipe.execute() if _as_int(ttl) >= 0)


def count_matching(store: RedisStore, pattern: str) -> int:
    """Keys whose name matches a Redis glob pattern (`session:*`), in every logical database."""

    def count(client: redis.Redis) -> int:
        return sum(1 for key in client.scan_iter(match=pattern, count=SCAN_BATCH) if key != MARKER_KEY)

    return sum(int(store._call(count, db)) for db in store.databases())


def plant_change(store: RedisStore) -> PlantedChange:
    """Change the value of the first key found (lowest database first), keeping its type and expiry."""
    for db in store.databases():
        client = store.server.client(db)
        try:
            key = next((k for k in client.scan_iter(count=SCAN_BATCH) if k != MARKER_KEY), None)
            if key is None:
                continue
            payload = client.dump(key)
            expires = _as_int(_cmd(client, "PEXPIRETIME", key)) if store._major() >= 7 else None
            relative = _as_int(client.pttl(key)) if expires is None else 0
            kind = bytes(client.type(key)).decode()  # type: ignore[arg-type]
            _change(client, key, kind)
        except redis.exceptions.RedisError as exc:
            client.close()
            raise StoreError(f"the self-test could not change a key of {store.name!r}: {exc}") from None
        client.close()
        name = bytes(key).decode(errors="replace")

        def undo(db: int = db, key: bytes = key, payload: Any = payload, expires: int | None = expires,
                 relative: int = relative) -> None:
            def put_back(c: redis.Redis) -> None:
                if expires is not None:  # RESTORE ... ABSTTL: the same absolute expiry (0: none)
                    _cmd(c, "RESTORE", key, max(expires, 0), payload, "REPLACE", "ABSTTL")
                else:
                    _cmd(c, "RESTORE", key, max(relative, 0), payload, "REPLACE")

            store._call(put_back, db)

        return PlantedChange(part=f"db{db}", item=f"the {kind} key {name!r} (db{db})", undo=undo)
    raise StoreError(f"the self-test found no key to change in {store.name!r}")


def _change(client: redis.Redis, key: bytes, kind: str) -> None:
    if kind == "string":
        client.append(key, _FIELD)
    elif kind == "hash":
        client.hset(key, _FIELD, b"1")
    elif kind == "list":
        client.rpush(key, _FIELD)
    elif kind == "set":
        client.sadd(key, _FIELD)
    elif kind == "zset":
        client.zadd(key, {_FIELD: 0})
    elif kind == "stream":
        client.xadd(key, {_FIELD: b"1"})
    else:
        raise StoreError(f"the self-test cannot change a Redis {kind} (key {key!r})")
