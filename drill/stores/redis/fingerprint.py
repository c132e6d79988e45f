"""Redis fingerprints: per logical database, each key's digest (type, value, TTL), computed inside the
server by a script when it can, else from the values the client reads."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis

from drill.errors import StoreError
from drill.fingerprint import PartPrint
from drill.stores.redis.commands import MARKER_KEY, SCAN_BATCH, _cmd

# Each key's digest computed inside the server, a batch of keys per script call: no value crosses the
# network, which makes the fingerprint several times faster than fetching values (see bench/). The
# canonical form matches the client-side one's rules: hash fields and set members sorted, lists, sorted
# sets (member, score) and stream entries in server order, other types as their DUMP payload, each
# piece length-prefixed. Redis 7+ only (PEXPIRETIME); used unless scripting is refused.
_DIGEST_SCRIPT = """
local out = {}
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' then
    local expires = redis.call('PEXPIRETIME', key)
    local pieces = {key, kind, string.format('%d', expires)}
    local value
    if kind == 'string' then
      value = {redis.call('GET', key)}
    elseif kind == 'hash' then
      local flat = redis.call('HGETALL', key)
      local fields = {}
      for i = 1, #flat, 2 do fields[#fields + 1] = flat[i] end
      table.sort(fields)
      local lookup = {}
      for i = 1, #flat, 2 do lookup[flat[i]] = flat[i + 1] end
      value = {}
      for _, f in ipairs(fields) do value[#value + 1] = f; value[#value + 1] = lookup[f] end
    elseif kind == 'list' then
      value = redis.call('LRANGE', key, 0, -1)
    elseif kind == 'set' then
      value = redis.call('SMEMBERS', key)
      table.sort(value)
    elseif kind == 'zset' then
      value = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    elseif kind == 'stream' then
      value = {}
      for _, entry in ipairs(redis.call('XRANGE', key, '-', '+')) do
        value[#value + 1] = entry[1]
        for _, item in ipairs(entry[2]) do value[#value + 1] = item end
      end
    else
      value = {redis.call('DUMP', key)}
    end
    for _, piece in ipairs(value) do pieces[#pieces + 1] = piece end
    local framed = {}
    for _, piece in ipairs(pieces) do  -- length prefix and piece as two entries: no copy of the piece
      framed[#framed + 1] = #piece .. ':'
      framed[#framed + 1] = piece
    end
    out[#out + 1] = kind
    out[#out + 1] = expires
    out[#out + 1] = redis.sha1hex(table.concat(framed))
  end
end
return out
"""


def _fingerprint_db(client: redis.Redis, absolute_ttl: bool) -> PartPrint:
    total = 0
    count = 0
    types: Counter[str] = Counter()
    expiring = 0
    batch: list[bytes] = []
    method = "server script (sha1)" if absolute_ttl else "client (blake2b)"
    script = client.register_script(_DIGEST_SCRIPT)

    def digests(keys: list[bytes]) -> Iterable[tuple[int, str, int]]:
        nonlocal method
        if method.startswith("server"):
            try:
                return _scripted_digests(script, keys)
            except redis.exceptions.ResponseError:
                if count:  # a method may not change halfway through a database
                    raise
                method = "client (blake2b)"  # scripting refused (e.g. ACL, managed service): fetch values
        return _key_digests(client, keys, absolute_ttl)

    for key in client.scan_iter(count=SCAN_BATCH):
        if key == MARKER_KEY:
            continue
        batch.append(bytes(key))
        if len(batch) >= SCAN_BATCH:
            for digest, kind, expires in digests(batch):
                total, count = (total + digest) % 2**64, count + 1
                types[kind] += 1
                expiring += expires
            batch = []
    for digest, kind, expires in digests(batch):
        total, count = (total + digest) % 2**64, count + 1
        types[kind] += 1
        expiring += expires
    content = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
    # The method is part of the schema: digests made two different ways are never called equal.
    schema = {"types": " ".join(f"{kind}:{n}" for kind, n in sorted(types.items())),
              "keys with a TTL": str(expiring), "content hash": method}
    return PartPrint(count, content, schema)


def _scripted_digests(script: Any, keys: list[bytes]) -> list[tuple[int, str, int]]:
    if not keys:
        return []
    flat: list[Any] = script(keys=keys)
    out = []
    for index in range(0, len(flat), 3):
        kind = flat[index].decode() if isinstance(flat[index], bytes) else str(flat[index])
        sha1 = flat[index + 2].decode() if isinstance(flat[index + 2], bytes) else str(flat[index + 2])
        out.append((int(sha1[:16], 16), kind, 1 if int(flat[index + 1]) >= 0 else 0))
    return out


def _key_digests(client: redis.Redis, keys: list[bytes], absolute_ttl: bool) -> Iterable[tuple[int, str, int]]:
    """(64-bit digest, type, 1 if it expires) of each key that still exists."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        if absolute_ttl:
            _cmd(pipe, "PEXPIRETIME", key)
        else:
            pipe.pttl(key)
    meta: list[Any] = pipe.execute()
    pipe = client.pipeline(transaction=False)
    present: list[tuple[bytes, str, int]] = []
    for index, key in enumerate(keys):
        kind = bytes(meta[2 * index]).decode() if isinstance(meta[2 * index], bytes) else str(meta[2 * index])
        ttl = int(meta[2 * index + 1])
        if kind == "none":
            continue  # expired or deleted since SCAN returned it
        if not absolute_ttl and ttl > 0:
            ttl = round(ttl / 1000)
        present.append((key, kind, ttl))
        if kind == "string":
            _cmd(pipe, "GET", key)
        elif kind == "hash":
            _cmd(pipe, "HGETALL", key)
        elif kind == "list":
            _cmd(pipe, "LRANGE", key, 0, -1)
        elif kind == "set":
            _cmd(pipe, "SMEMBERS", key)
        elif kind == "zset":
            _cmd(pipe, "ZRANGE", key, 0, -1, "WITHSCORES")
        elif kind == "stream":
            _cmd(pipe, "XRANGE", key, "-", "+")
        else:
            _cmd(pipe, "DUMP", key)
    values: list[Any] = pipe.execute()
    out = []
    for (key, kind, ttl), value in zip(present, values, strict=True):
        digest = hashlib.blake2b(digest_size=16)
        for piece in (key, kind.encode(), str(ttl).encode(), *_canonical(kind, value)):
            digest.update(len(piece).to_bytes(8, "big"))
            digest.update(piece)
        out.append((int.from_bytes(digest.digest()[:8], "big"), kind, 1 if ttl >= 0 else 0))
    return out


def _canonical(kind: str, value: Any) -> list[bytes]:
    """The value of a key as a list of byte strings that only depends on the data, not on its encoding."""
    if value is None:
        return [b"(nil)"]
    if kind == "hash":
        pairs = value.items() if isinstance(value, dict) else zip(value[::2], value[1::2], strict=True)
        return [piece for pair in sorted((_b(k), _b(v)) for k, v in pairs) for piece in pair]
    if kind == "set":
        return sorted(_b(member) for member in value)
    if kind in ("list", "zset"):
        # zset: Redis's own order (score, then member); each score as the server formats it.
        return [_b(item) if not isinstance(item, (list, tuple)) else b"\x00".join(_b(x) for x in item)
                for item in value]
    if kind == "stream":
        pieces: list[bytes] = []
        for entry_id, fields in value:
            pieces.append(_b(entry_id))
            items = fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2], strict=True)
            pieces.extend(piece for pair in items for piece in (_b(pair[0]), _b(pair[1])))
        return pieces
    return [_b(value)]


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _db_number(part: str, store: str) -> int:
    if part.startswith("db") and part[2:].isdigit():
        return int(part[2:])
    raise StoreError(f"{store!r} has no key-space {part!r}: name a logical database as db0, db1...")
