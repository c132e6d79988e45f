"""Redis: RDB snapshots with BGSAVE, restores by restarting a server on the snapshot, SCAN fingerprints.

A backup is the server's own RDB file: drill issues BGSAVE, waits for it to finish (polling
INFO persistence, with a timeout) and copies dump.rdb into the backup directory. The fingerprint
of a backup is taken right before BGSAVE: during a drill nothing writes to the store but drill's
RPO marker writer, whose key (`drill:markers`) every fingerprint and count leaves out, so the
fingerprint describes exactly the data in the RDB. The moment BGSAVE is issued is the backup's
consistent point (Redis forks and snapshots memory then).

A restore of a local store stops its server, puts the backup in place of dump.rdb and starts the
server again on the same port; a restore "into" another name starts a second throwaway server
on a copy of the backup. Live stores are backed up when the server's RDB file is reachable on
this machine (CONFIG GET dir/dbfilename); a live store is restored in place by starting a
throwaway server on the backup and replaying every key with DUMP/RESTORE ... ABSTTL.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from drill.config import StoreConfig
from drill.errors import ProvisionError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.pause import pause_point
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    no_progress,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.redis import KIND, checks
from drill.stores.redis.aof import _place_backup, carries_aof
from drill.stores.redis.commands import MARKER_KEY, SCAN_BATCH, _as_int, _cmd
from drill.stores.redis.fingerprint import _db_number, _fingerprint_db
from drill.stores.redis.local import (
    LocalRedisServer,
    redis_server_binary,
    redis_server_version,
)
from drill.stores.redis.seed import _seed_key
from drill.stores.redis.snapshot import Snapshots

SEED_BATCH = 1000



@dataclass
class RedisServer:
    """Where a Redis store lives: host, port, credentials, and (local only) the server drill runs."""

    host: str
    port: int
    password: str | None = None
    username: str | None = None
    ssl: bool = False
    description: str = ""  # redacted location, for reports
    local: LocalRedisServer | None = None

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=db, password=self.password, username=self.username,
                           ssl=self.ssl, socket_timeout=120, socket_connect_timeout=15)


class RedisMarkerSink:
    """RPO markers in the sorted set drill:markers (score: seq; member: "seq:client-epoch") of db 0."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._client: redis.Redis | None = None

    def prepare(self) -> None:
        self._client = self.server.client()
        self._client.ping()

    def write(self, marker: Marker) -> None:
        assert self._client is not None, "prepare() first"
        self._client.zadd(MARKER_KEY, {f"{marker.seq}:{marker.written_at!r}": marker.seq})

    def newest(self) -> Marker | None:
        client = self.server.client()
        try:
            found: Any = client.zrange(MARKER_KEY, -1, -1)
        finally:
            client.close()
        if not found:
            return None
        seq, _, written_at = bytes(found[0]).decode().partition(":")
        return Marker(int(seq), float(written_at))

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


@dataclass
class RedisStore(Guarded):
    name: str
    config: StoreConfig
    server: RedisServer
    kind: str = KIND.kind
    # What close() must undo: e.g. the throwaway server of a restored copy this store owns.
    closers: list[Callable[[], object]] = field(default_factory=list)
    _server_version: str | None = None

    def describe(self) -> dict[str, str]:
        return {"kind": "redis", "location": self.server.description, "server_version": self.server_version(),
                "provision": self.config.provision}

    def server_version(self) -> str:
        if self._server_version is None:
            info: Any = self._call(lambda c: c.info("server"))
            self._server_version = str(info.get("redis_version", "unknown"))
        return self._server_version

    def _major(self) -> int:
        try:
            return int(self.server_version().split(".")[0])
        except ValueError:
            return 0

    def _call(self, action: Callable[[redis.Redis], Any], db: int = 0) -> Any:
        client = self.server.client(db)
        try:
            return action(client)
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"Redis store {self.name!r} at {self.server.description}: "
                             f"{redact_text(str(exc))}") from None
        finally:
            client.close()

    def execute_command(self, *args: str | bytes | int | float, db: int = 0) -> Any:
        """Run one Redis command (setup steps, or a planted fault in a test); writes need allow_writes."""
        self.require_writes("run a command on")
        return self._call(lambda c: _cmd(c, *args), db)

    # -- data -------------------------------------------------------------------------------------------

    def databases(self) -> list[int]:
        """Logical databases holding keys (INFO keyspace), ascending."""
        info: Any = self._call(lambda c: c.info("keyspace"))
        return sorted(int(name[2:]) for name in info if str(name).startswith("db"))

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        """Exactly `count` deterministic keys in db 0, of every type, some with TTLs, non-ASCII values."""
        self.require_writes("seed")
        client = self.server.client(0)
        try:
            existing = next(iter(client.scan_iter(match="seed:*", count=SCAN_BATCH)), None)
            if existing is not None:
                raise StoreError(f"cannot seed {self.name!r}: db0 already holds seed keys (e.g. "
                                 f"{bytes(existing).decode(errors='replace')!r}); seed an empty store")
            for start in range(0, count, SEED_BATCH):
                pipe = client.pipeline(transaction=False)
                for i in range(start, min(count, start + SEED_BATCH)):
                    _seed_key(pipe, i)
                pipe.execute()
                done = min(count, start + SEED_BATCH)
                if done % 10_000 == 0 or done == count:
                    progress(f"seeded {done}/{count} keys")
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"seeding {self.name!r} failed: {redact_text(str(exc))}") from None
        finally:
            client.close()

    def count(self, part: str | None = None) -> int:
        if part is not None:
            db = _db_number(part, self.name)
            return self._count_db(db)
        return sum(self._count_db(db) for db in self.databases())

    def _count_db(self, db: int) -> int:
        def count(c: redis.Redis) -> int:
            size = _as_int(c.dbsize())
            return size - _as_int(c.exists(MARKER_KEY))

        result: int = self._call(count, db)
        return result

    def fingerprint(self) -> Fingerprint:
        """Per logical database ("db0", "db1"...): key count, types, and an order-independent content hash.

        Each key contributes a blake2b over its name, type, expiry and canonical value (string: GET;
        hash: HGETALL sorted by field; list: LRANGE; set: SMEMBERS sorted; zset: ZRANGE WITHSCORES;
        stream: XRANGE entries; anything else: its DUMP payload). DUMP is not used for the known types
        because its bytes depend on the server's encoding choices and version. The expiry is the
        absolute PEXPIRETIME (Redis 7: stable across time and across an RDB restore, which keeps
        absolute expiry times); before Redis 7, the remaining TTL rounded to whole seconds, which may
        differ by one second when the two fingerprints straddle a boundary. The first 8 bytes of each
        key's digest are summed modulo 2**64: order-independent, and equal keys in different
        databases or duplicated contributions cannot cancel (unlike XOR). Stream consumer groups and
        last-generated ids are not part of the fingerprint. drill's marker key is left out.
        """
        absolute = self._major() >= 7
        parts: dict[str, PartPrint] = {}
        for db in self.databases():
            part: PartPrint = self._call(lambda c: _fingerprint_db(c, absolute), db)
            if part.count:
                parts[f"db{db}"] = part
        extras = {"ttl": "absolute PEXPIRETIME" if absolute else "remaining TTL, whole seconds"}
        return KIND.fingerprint(parts, extras=extras, taken_at=time.time())

    # -- backup and restore -------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        return Snapshots(self).backup(directory, progress)

    def verify_backup(self, artifact: BackupArtifact) -> None:
        Snapshots(self).verify_backup(artifact)

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        self.verify_backup(artifact)  # before the target is touched
        local = self.server.local
        if local is None:
            return self._replay_into_live(artifact, into, progress)
        if into is not None:
            return self._restore_copy(artifact, into, local, progress)
        self.require_destructive("overwrite")
        progress(f"stopping the Redis server of {self.name} (SHUTDOWN NOSAVE)")
        local.stop_server()
        shutil.rmtree(local.aof_dir, ignore_errors=True)
        local.rdb_path.unlink(missing_ok=True)
        _place_backup(artifact, local.data_dir)
        # A backup that carries an AOF is loaded from it (Redis prefers the AOF when it is on).
        local.appendonly = carries_aof(artifact)
        progress(f"starting the Redis server of {self.name} on {artifact.path.name}, port {local.port}")
        local.start_server()
        return self

    def _replay_into_live(self, artifact: BackupArtifact, into: str | None, progress: Progress) -> Store:
        """Start a throwaway server on the backup and copy every key into the live server: DUMP, then
        RESTORE ... ABSTTL with the key's PEXPIRETIME, so expiry times survive exactly. The live
        store is emptied first (FLUSHALL): afterwards it holds what the backup holds, nothing else."""
        if into is not None:
            raise StoreError(f"restoring a backup of live Redis store {self.name!r} into {into!r} is not supported: "
                             f"drill only restores a live Redis store in place (or a local store into a copy)")
        self.require_destructive("overwrite")
        binary = redis_server_binary()
        source = LocalRedisServer(binary, version=redis_server_version(binary),
                                  appendonly=carries_aof(artifact))
        progress(f"starting a throwaway Redis server on {artifact.path.name} to replay it into {self.name}")
        try:
            source.start(data=lambda directory: _place_backup(artifact, directory))
            source_store = RedisStore(name=f"{self.name} backup", config=replace(self.config, provision="local"),
                                      server=RedisServer(host="127.0.0.1", port=source.port, local=source))
            if source_store._major() < 7:
                raise StoreError(f"replaying into {self.name!r} needs redis-server 7 or newer on this machine "
                                 f"(PEXPIRETIME), found {source.version}")
            self._call(lambda c: c.flushall())
            copied = 0
            for index, db in enumerate(source_store.databases()):
                copied += self._replay_db(source.client(db), db, first=index == 0)
            progress(f"replayed {copied} keys into {self.name} with DUMP/RESTORE")
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"replaying {artifact.id} into {self.name!r} failed: {redact_text(str(exc))}") from None
        finally:
            source.stop()
        return self

    def _replay_db(self, source: redis.Redis, db: int, first: bool = False) -> int:
        target = self.server.client(db)
        copied = 0
        try:
            batch: list[bytes] = []
            keys = iter(source.scan_iter(count=SCAN_BATCH))
            while True:
                key = next(keys, None)
                if key is not None:
                    batch.append(bytes(key))
                if batch and (key is None or len(batch) >= SCAN_BATCH):
                    pipe = source.pipeline(transaction=False)
                    for item in batch:
                        _cmd(pipe, "DUMP", item)
                        _cmd(pipe, "PEXPIRETIME", item)
                    dumped: list[Any] = pipe.execute()
                    out = target.pipeline(transaction=False)
                    for index, item in enumerate(batch):
                        payload, expires = dumped[2 * index], int(dumped[2 * index + 1])
                        if payload is None or expires == -2:
                            continue  # gone since SCAN
                        if expires >= 0:
                            _cmd(out, "RESTORE", item, expires, payload, "REPLACE", "ABSTTL")
                        else:
                            _cmd(out, "RESTORE", item, 0, payload, "REPLACE")
                        copied += 1
                    out.execute()
                    batch = []
                    if first:  # the first batch is in, the rest is not: a test may catch the replay here
                        first = False
                        pause_point(f"restore-started:{self.name}")
                if key is None:
                    return copied
        finally:
            source.close()
            target.close()

    def _restore_copy(self, artifact: BackupArtifact, into: str, local: LocalRedisServer,
                      progress: Progress) -> Store:
        copy = local.sibling(appendonly=carries_aof(artifact))
        progress(f"starting a throwaway Redis server for {into} on {artifact.path.name}")
        try:
            copy.start(data=lambda directory: _place_backup(artifact, directory))
        except ProvisionError as exc:
            raise StoreError(f"restoring {artifact.id} into {into!r} failed: {exc}") from None
        server = RedisServer(host="127.0.0.1", port=copy.port,
                             description=f"{copy.label} on 127.0.0.1:{copy.port} (Redis {copy.version})",
                             local=copy)
        # A restored copy is drill's own: it may be written to and destroyed.
        store = RedisStore(name=into, config=replace(self.config, name=into, destructive=True), server=server,
                           closers=[copy.stop])
        return store

    # -- disaster ---------------------------------------------------------------------------------------------

    def lose(self) -> None:
        self.require_destructive("lose")
        self._call(lambda c: c.flushall())

    def markers(self) -> RedisMarkerSink:
        return RedisMarkerSink(self.server)

    # -- richer counts and the self-test (checks.py) ------------------------------------------------------

    def count_expiring(self) -> int:
        return checks.count_expiring(self)

    def count_matching(self, pattern: str) -> int:
        return checks.count_matching(self, pattern)

    def plant_change(self) -> PlantedChange:
        return checks.plant_change(self)

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            closer()


