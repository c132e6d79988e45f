"""Redis fingerprints: per logical database, each key's digest (type, value, TTL), computed inside the
server by a script when it can, else from the values the client reads."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from drill.errors import StoreError
from drill.fingerprint import PartPrint
from drill.stores.redis.commands import MARKER_KEY, SCAN_BATCH, _cmd

# Each key's digest computed inside the server, and summed there: a script call scans the next batch of
# keys itself (SCAN inside the script), hashes each key and returns the batch's sums, so neither keys nor
# digests cross the network and the client parses five numbers per batch (bench/store_bench.py measures
# it against the server's own DEBUG DIGEST). The canonical form matches the client-side one's rules:
# hash fields and set members sorted, lists, sorted sets (member, score) and stream entries in server
# order, other types as their DUMP payload, each piece length-prefixed ("<length>:<piece>"). A key's
# digest is the first 64 bits of the SHA-1 of that form; the batch returns the sums of their high and
# low 32-bit halves (exact in Lua's doubles: a batch would need 2**21 keys to lose a bit), which give
# the same 64-bit sum as adding the digests one by one. Redis 7+ only (PEXPIRETIME); used unless
# scripting is refused. Per key the script spends its time in the redis.call()s (TYPE, PEXPIRETIME, the
# value) and in building and hashing the form, so the form is built from few pieces: the length prefixes
# ("12:") of short pieces come from a table made once per call instead of a number formatted per piece,
# a type's piece and the TTL piece of a key without one are made once. Same bytes hashed, same digests
# (tests/test_redis_store.py checks the sum against one computed from redis-py's reads).
_BATCH_SCRIPT = """
local call, sha1, concat, sort = redis.call, redis.sha1hex, table.concat, table.sort
local sub, tonumber, format = string.sub, tonumber, string.format
local scanned = call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local marker = ARGV[3]
local hi, lo, n, expiring = 0, 0, 0, 0
local kinds = {}
-- Length prefixes as ready strings: a number concatenated is formatted by sprintf, once per piece otherwise.
local pre = {}
for i = 0, 255 do pre[i] = i .. ':' end
local kind_piece, never = {}, '2:-1'  -- '<length>:<type>' made once per type; the TTL piece of a key without one
for _, key in ipairs(scanned[2]) do
  local kind = key ~= marker and call('TYPE', key)['ok'] or 'none'
  if kind ~= 'none' then
    local expires = call('PEXPIRETIME', key)
    local e = never
    if expires ~= -1 then
      e = format('%d', expires)
      e = #e .. ':' .. e
    end
    local kp = kind_piece[kind]
    if not kp then kp = #kind .. ':' .. kind; kind_piece[kind] = kp end
    local f = {pre[#key] or (#key .. ':'), key, kp, e}
    local m = 4
    if kind == 'string' then
      local v = call('GET', key)
      f[5] = pre[#v] or (#v .. ':'); f[6] = v
    elseif kind == 'hash' then
      local flat = call('HGETALL', key)
      local fields, lookup = {}, {}
      for i = 1, #flat, 2 do fields[#fields + 1] = flat[i]; lookup[flat[i]] = flat[i + 1] end
      sort(fields)
      for _, k in ipairs(fields) do
        local v = lookup[k]
        f[m + 1] = pre[#k] or (#k .. ':'); f[m + 2] = k; f[m + 3] = pre[#v] or (#v .. ':'); f[m + 4] = v
        m = m + 4
      end
    else
      local value
      if kind == 'list' then
        value = call('LRANGE', key, 0, -1)
      elseif kind == 'set' then
        value = call('SMEMBERS', key)
        sort(value)
      elseif kind == 'zset' then
        value = call('ZRANGE', key, 0, -1, 'WITHSCORES')
      elseif kind == 'stream' then
        value = {}
        for _, entry in ipairs(call('XRANGE', key, '-', '+')) do
          value[#value + 1] = entry[1]
          for _, item in ipairs(entry[2]) do value[#value + 1] = item end
        end
      else
        value = {call('DUMP', key)}
      end
      for _, v in ipairs(value) do f[m + 1] = pre[#v] or (#v .. ':'); f[m + 2] = v; m = m + 2 end
    end
    local digest = sha1(concat(f))
    hi = hi + tonumber(sub(digest, 1, 8), 16)
    lo = lo + tonumber(sub(digest, 9, 16), 16)
    n = n + 1
    if expires >= 0 then expiring = expiring + 1 end
    kinds[kind] = (kinds[kind] or 0) + 1
  end
end
local out = {scanned[1], n, expiring, string.format('%.0f', hi), string.format('%.0f', lo)}
for kind, count in pairs(kinds) do out[#out + 1] = kind; out[#out + 1] = count end
return out
"""


@dataclass
class _Sums:
    """What a database's keys add up to, batch after batch: the order-independent content and the schema."""

    total: int = 0
    count: int = 0
    expiring: int = 0
    types: Counter[str] = field(default_factory=Counter)

    def add(self, digest: int, kind: str, expires: int) -> None:
        self.total, self.count = (self.total + digest) % 2**64, self.count + 1
        self.types[kind] += 1
        self.expiring += expires


def _fingerprint_db(client: redis.Redis, absolute_ttl: bool) -> PartPrint:
    sums = _Sums()
    method = "server script (sha1)"
    if not absolute_ttl or not _scripted(client, sums):
        # Scripting refused (e.g. an ACL, a managed service) or Redis before 7: fetch the values.
        method = "client (blake2b)"
        batch: list[bytes] = []
        for key in client.scan_iter(count=SCAN_BATCH):
            if key == MARKER_KEY:
                continue
            batch.append(bytes(key))
            if len(batch) >= SCAN_BATCH:
                for found in _key_digests(client, batch, absolute_ttl):
                    sums.add(*found)
                batch = []
        for found in _key_digests(client, batch, absolute_ttl):
            sums.add(*found)
    content = hashlib.sha256(f"{sums.count}:{sums.total}".encode()).hexdigest()[:32]
    # The method is part of the schema: digests made two different ways are never called equal.
    schema = {"types": " ".join(f"{kind}:{n}" for kind, n in sorted(sums.types.items())),
              "keys with a TTL": str(sums.expiring), "content hash": method}
    return PartPrint(sums.count, content, schema)


def _scripted(client: redis.Redis, sums: _Sums) -> bool:
    """Add every key's digest, computed in the server a batch at a time, to `sums`; False when the server refuses
    the script before the first batch (then `sums` is untouched). A refusal halfway is an error: a method may
    not change in the middle of a database."""
    script = client.register_script(_BATCH_SCRIPT)
    cursor: Any = b"0"
    first = True
    while True:
        try:
            reply: list[Any] = script(keys=[], args=[cursor, SCAN_BATCH, MARKER_KEY])
        except redis.exceptions.ResponseError:
            if first:
                return False
            raise
        first = False
        cursor = reply[0]
        sums.total = (sums.total + (int(reply[3]) << 32) + int(reply[4])) % 2**64
        sums.count += int(reply[1])
        sums.expiring += int(reply[2])
        for index in range(5, len(reply), 2):
            kind = reply[index].decode() if isinstance(reply[index], bytes) else str(reply[index])
            sums.types[kind] += int(reply[index + 1])
        if int(cursor) == 0:
            return True


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
