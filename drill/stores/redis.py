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
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import redis

from drill.config import StoreConfig
from drill.errors import BackupError, ProvisionError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.provision.local_redis import (
    AOF_DIR,
    RDB_NAME,
    LocalRedisServer,
    redis_server_binary,
    redis_server_version,
)
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    check_backup_file,
    no_progress,
    sha256_file,
)

MARKER_KEY = b"drill:markers"
RDB_MAGIC = b"REDIS"
AOF_FORMAT = "redis-rdb+aof"  # a tar of dump.rdb and appendonlydir/ (manifest, base and incr files)
AOF_BASENAME = "appendonly.aof"
BGSAVE_TIMEOUT = 3600.0
SCAN_BATCH = 1000
SEED_BATCH = 1000
SEED_TYPES = ("string", "hash", "list", "set", "zset", "stream")
SEED_TTL_EVERY = 7  # every 7th seeded key expires (in a day or more: never during a drill)


def _as_int(value: Any) -> int:
    return int(value)


def _cmd(target: Any, *args: Any) -> Any:
    """execute_command on a client or pipeline (untyped in redis-py)."""
    return target.execute_command(*args)


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
    # A live Redis has no "new database" to restore into: drill restores it in place (destructive only).
    restores_live_into_new_target: ClassVar[bool] = False
    name: str
    config: StoreConfig
    server: RedisServer
    kind: str = "redis"
    # What close() must undo: e.g. the throwaway server of a restored copy this store owns.
    closers: list[Callable[[], object]] = field(default_factory=list)
    _server_version: str | None = None

    @property
    def unit(self) -> str:
        return "keys"

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
        return Fingerprint(kind="redis", part_label="key-space", unit="keys", parts=parts, extras=extras,
                           taken_at=time.time())

    # -- backup and restore -------------------------------------------------------------------------------

    def _rdb_location(self, client: redis.Redis) -> Path:
        if self.server.local is not None:
            return self.server.local.rdb_path
        try:
            directory: Any = client.config_get("dir")
            filename: Any = client.config_get("dbfilename")
        except redis.exceptions.ResponseError as exc:
            raise BackupError(f"cannot find the RDB file of {self.name!r}: CONFIG GET failed ({exc}); "
                              f"drill copies the server's dump.rdb, so it needs CONFIG and the file on this machine"
                              ) from None
        return Path(str(directory["dir"])) / str(filename["dbfilename"])

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        """BGSAVE, wait for it, copy dump.rdb into `directory` (written as .partial, then renamed)."""
        directory.mkdir(parents=True, exist_ok=True)
        version = self.server_version()
        # Taken right before BGSAVE: only drill's marker writer writes to the store during a drill, and
        # its key is excluded from fingerprints, so this describes exactly what the snapshot holds.
        fingerprint = self.fingerprint()
        client = self.server.client()
        try:
            source = self._rdb_location(client)
            aof = self._aof_location(client)
            consistent_at = self._bgsave(client, progress)
            if aof is not None:
                self._wait_for_aof_rewrite(client)
        except redis.exceptions.RedisError as exc:
            raise BackupError(f"BGSAVE of {self.name!r} failed: {redact_text(str(exc))}") from None
        finally:
            client.close()
        if not source.is_file():
            raise BackupError(f"the RDB file of {self.name!r} is not reachable from this machine ({source}); "
                              f"drill copies the server's dump.rdb, so it must run where the file is")
        if aof is not None and not (aof / "").is_dir():
            raise BackupError(f"the AOF folder of {self.name!r} is not reachable from this machine ({aof})")
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        final = directory / (f"{backup_id}.rdb" if aof is None else f"{backup_id}.rdb-aof.tar")
        partial = final.with_name(f".{final.name}.partial")
        try:
            if aof is None:
                shutil.copyfile(source, partial)  # Redis renames a finished RDB into place: the file is whole
            else:
                _write_aof_tar(partial, source, aof)
            digest = sha256_file(partial)
            os.replace(partial, final)  # only a complete copy gets a name that looks like a backup
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        copied = source.name if aof is None else f"{source.name} and {aof.name}/"
        progress(f"copied {copied} ({final.stat().st_size} bytes) to {final}")
        return BackupArtifact(
            id=backup_id, store=self.name, kind="redis", format="redis-rdb" if aof is None else AOF_FORMAT,
            path=final, sha256=digest,
            size=final.stat().st_size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions={"redis-server": version}, server_version=version, fingerprint=fingerprint)

    def _aof_location(self, client: redis.Redis) -> Path | None:
        """The AOF folder when the server keeps one (Redis 7: appendonlydir/), else None."""
        if self.server.local is not None:
            return self.server.local.aof_dir if self.server.local.appendonly else None
        try:
            enabled: Any = client.config_get("appendonly")
            if str(enabled.get("appendonly")) != "yes" or self._major() < 7:
                return None  # before Redis 7 the AOF is one file; drill backs up the RDB only
            directory: Any = client.config_get("dir")
            dirname: Any = client.config_get("appenddirname")
            filename: Any = client.config_get("appendfilename")
        except redis.exceptions.ResponseError:
            return None
        if str(filename.get("appendfilename")) != AOF_BASENAME:
            return None  # a restore starts servers with the default AOF names; such a backup is the RDB only
        return Path(str(directory["dir"])) / str(dirname["appenddirname"])

    def _wait_for_aof_rewrite(self, client: redis.Redis) -> None:
        """An AOF rewrite swaps the folder's files: copy it only when none is running or scheduled."""
        deadline = time.monotonic() + BGSAVE_TIMEOUT
        while True:
            persistence: Any = client.info("persistence")
            if not int(persistence.get("aof_rewrite_in_progress", 0)) \
                    and not int(persistence.get("aof_rewrite_scheduled", 0)):
                return
            if time.monotonic() > deadline:
                raise BackupError(f"an AOF rewrite of {self.name!r} did not finish in {BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.05)

    def _bgsave(self, client: redis.Redis, progress: Progress) -> float:
        """Issue BGSAVE (after any save already running) and wait for it; returns when it was issued."""
        deadline = time.monotonic() + BGSAVE_TIMEOUT
        while True:
            persistence: Any = client.info("persistence")
            if not int(persistence.get("rdb_bgsave_in_progress", 0)):
                break
            if time.monotonic() > deadline:
                raise BackupError(f"a background save of {self.name!r} already running did not finish in "
                                  f"{BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.05)
        # INFO persistence: rdb_saves counts finished saves (Redis 7); rdb_last_save_time is LASTSAVE.
        before_saves = int(persistence.get("rdb_saves", -1))
        before_lastsave = int(persistence.get("rdb_last_save_time", 0))
        consistent_at = time.time()
        client.bgsave()
        progress(f"BGSAVE issued on {self.name}")
        seen_running = False
        while True:
            persistence = client.info("persistence")
            in_progress = int(persistence.get("rdb_bgsave_in_progress", 0))
            seen_running = seen_running or bool(in_progress)
            if before_saves >= 0:
                finished = int(persistence.get("rdb_saves", -1)) > before_saves
            else:  # older servers: LASTSAVE moves (whole seconds, so a save in the same second is missed)
                finished = seen_running or int(persistence.get("rdb_last_save_time", 0)) > before_lastsave
            if not in_progress and finished:
                break
            if not in_progress and str(persistence.get("rdb_last_bgsave_status")) == "err":
                raise BackupError(f"BGSAVE of {self.name!r} failed (rdb_last_bgsave_status: err); see the "
                                  f"server log")
            if time.monotonic() > deadline:
                raise BackupError(f"BGSAVE of {self.name!r} did not finish within {BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.02)
        if str(persistence.get("rdb_last_bgsave_status")) != "ok":
            raise BackupError(f"BGSAVE of {self.name!r} failed (rdb_last_bgsave_status: "
                              f"{persistence.get('rdb_last_bgsave_status')}); see the server log")
        return consistent_at

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """Prove the backup is the file BGSAVE wrote (sha256) and an RDB file, before anything is touched."""
        path = check_backup_file(artifact)
        if artifact.format == AOF_FORMAT:
            _check_aof_tar(path)
            return
        with path.open("rb") as handle:
            head = handle.read(len(RDB_MAGIC))
        if head != RDB_MAGIC:
            raise BackupError(f"backup {path} is not a Redis RDB file (it does not start with {RDB_MAGIC!r})")
        checker = shutil.which("redis-check-rdb")
        if artifact.sha256 is None and checker is not None:
            # No recorded checksum: read the whole file (redis-check-rdb also checks the RDB's CRC64).
            done = subprocess.run([checker, str(path)], capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise BackupError(f"backup {path} is not a readable RDB file: {done.stdout.strip()[-2000:]}")

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
        local.appendonly = artifact.format == AOF_FORMAT
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
                                  appendonly=artifact.format == AOF_FORMAT)
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
            for db in source_store.databases():
                copied += self._replay_db(source.client(db), db)
            progress(f"replayed {copied} keys into {self.name} with DUMP/RESTORE")
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"replaying {artifact.id} into {self.name!r} failed: {redact_text(str(exc))}") from None
        finally:
            source.stop()
        return self

    def _replay_db(self, source: redis.Redis, db: int) -> int:
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
                if key is None:
                    return copied
        finally:
            source.close()
            target.close()

    def _restore_copy(self, artifact: BackupArtifact, into: str, local: LocalRedisServer,
                      progress: Progress) -> Store:
        copy = local.sibling(appendonly=artifact.format == AOF_FORMAT)
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

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            closer()


# -- AOF backups: a tar of dump.rdb and appendonlydir/ ------------------------------------------------------------

def _aof_manifest_files(manifest: str) -> list[str]:
    """File names in a Redis 7 AOF manifest (lines such as `file appendonly.aof.1.base.rdb seq 1 type b`)."""
    names = []
    for line in manifest.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "file":
            names.append(words[1])
    return names


def _write_aof_tar(target: Path, rdb: Path, aof: Path) -> None:
    """dump.rdb plus the AOF folder as its manifest names it. The manifest is read before and after the
    copy: a rewrite in between (possible on a live server) swaps the files, so the copy is made again."""
    manifest_path = aof / f"{AOF_BASENAME}.manifest"
    for _attempt in range(5):
        before = manifest_path.read_text()
        with tarfile.open(target, "w") as tar:
            tar.add(rdb, arcname=RDB_NAME)
            data = before.encode()
            info = tarfile.TarInfo(f"{AOF_DIR}/{manifest_path.name}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
            for name in _aof_manifest_files(before):
                tar.add(aof / name, arcname=f"{AOF_DIR}/{name}")  # incr files only grow: a prefix is whole
        if manifest_path.read_text() == before:
            return
    raise BackupError(f"the AOF of {aof} kept being rewritten while drill copied it; try again")


def _check_aof_tar(path: Path) -> None:
    """A readable tar holding dump.rdb and an AOF folder whose manifest's files are all there."""
    try:
        with tarfile.open(path, "r") as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name, member in members.items():
                if not member.isfile() or not (name == RDB_NAME or (name.startswith(f"{AOF_DIR}/")
                                                                    and "/" not in name[len(AOF_DIR) + 1:]
                                                                    and ".." not in name)):
                    raise BackupError(f"backup {path} holds {name!r}, which is not part of a Redis backup")
            manifest = members.get(f"{AOF_DIR}/{AOF_BASENAME}.manifest")
            if RDB_NAME not in members or manifest is None:
                raise BackupError(f"backup {path} lacks {RDB_NAME} or the AOF manifest")
            handle = tar.extractfile(manifest)
            assert handle is not None
            missing = [n for n in _aof_manifest_files(handle.read().decode(errors="replace"))
                       if f"{AOF_DIR}/{n}" not in members]
            if missing:
                raise BackupError(f"backup {path} lacks AOF files its manifest names: {', '.join(missing)}")
            rdb = tar.extractfile(members[RDB_NAME])
            assert rdb is not None
            if rdb.read(len(RDB_MAGIC)) != RDB_MAGIC:
                raise BackupError(f"backup {path}: {RDB_NAME} is not a Redis RDB file")
            for member in members.values():  # read every byte: a truncated tar fails here
                body = tar.extractfile(member)
                assert body is not None
                while body.read(1 << 20):
                    pass
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"backup {path} is not a readable Redis RDB+AOF archive: {exc}") from None


def _place_backup(artifact: BackupArtifact, directory: Path) -> None:
    """Put a backup's files where a server starting in `directory` loads them."""
    if artifact.format != AOF_FORMAT:
        partial = directory / f".{RDB_NAME}.partial"
        shutil.copyfile(artifact.path, partial)
        os.replace(partial, directory / RDB_NAME)
        return
    with tarfile.open(artifact.path, "r") as tar:
        tar.extractall(directory, filter="data")  # names were checked by verify_backup; "data" refuses escapes


# -- fingerprints ---------------------------------------------------------------------------------------------


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


# -- seed data ------------------------------------------------------------------------------------------------

_NAMES = ("Zoë", "José", "Łukasz", "Ångström", "Søren", "Nguyễn", "Μαρία", "Дмитрий", "李雷", "محمد")


def _seed_key(pipe: Any, i: int) -> None:
    kind = SEED_TYPES[i % len(SEED_TYPES)]
    key = f"seed:{kind}:{i:08d}"
    name = _NAMES[i % len(_NAMES)]
    if kind == "string":
        pipe.set(key, f"{name} — café ☕ #{i}")
    elif kind == "hash":
        pipe.hset(key, mapping={"name": name, "city": "Zürich", "visits": str(i * 3), "score": f"{i / 7:.6f}"})
    elif kind == "list":
        pipe.rpush(key, *(f"{name}-{j}" for j in range(i % 5 + 1)))
    elif kind == "set":
        pipe.sadd(key, *(f"tag-{(i + j) % 11}-ü" for j in range(i % 4 + 1)))
    elif kind == "zset":
        pipe.zadd(key, {f"{name}-{j}": (i * j) / 4 for j in range(i % 4 + 1)})
    else:
        for j in range(i % 3 + 1):
            pipe.xadd(key, {"event": "login", "user": name, "n": str(j)}, id=f"{i + 1}-{j}")
    if i % SEED_TTL_EVERY == 3:
        pipe.expire(key, 86_400 + i)
