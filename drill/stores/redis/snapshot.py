"""Redis backups: BGSAVE (the server's own consistent snapshot), the RDB file and, when the server keeps one,
its AOF folder copied with it; the store's own check of a backup file before it is restored."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from drill import found_backups
from drill.errors import BackupError
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Progress,
    check_backup_file,
    no_progress,
    sha256_file,
)
from drill.stores.redis.aof import AOF_BASENAME, AOF_FORMAT, RDB_MAGIC, _check_aof_tar, _write_aof_tar

BGSAVE_TIMEOUT = 3600.0

if TYPE_CHECKING:
    from drill.stores.redis.store import RedisStore


class Snapshots:
    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def _rdb_location(self, client: redis.Redis) -> Path:
        if self.store.server.local is not None:
            return self.store.server.local.rdb_path
        try:
            directory: Any = client.config_get("dir")
            filename: Any = client.config_get("dbfilename")
        except redis.exceptions.ResponseError as exc:
            raise BackupError(f"cannot find the RDB file of {self.store.name!r}: CONFIG GET failed ({exc}); "
                              f"drill copies the server's dump.rdb, so it needs CONFIG and the file on this machine"
                              ) from None
        return Path(str(directory["dir"])) / str(filename["dbfilename"])

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        """BGSAVE, wait for it, copy dump.rdb into `directory` (written as .partial, then renamed)."""
        directory.mkdir(parents=True, exist_ok=True)
        version = self.store.server_version()
        # Taken right before BGSAVE: only drill's marker writer writes to the store during a drill, and
        # its key is excluded from fingerprints, so this describes exactly what the snapshot holds.
        fingerprint = self.store.fingerprint()
        client = self.store.server.client()
        try:
            source = self._rdb_location(client)
            aof = self._aof_location(client)
            consistent_at = self._bgsave(client, progress)
            if aof is not None:
                self._wait_for_aof_rewrite(client)
        except redis.exceptions.RedisError as exc:
            raise BackupError(f"BGSAVE of {self.store.name!r} failed: {redact_text(str(exc))}") from None
        finally:
            client.close()
        if not source.is_file():
            raise BackupError(f"the RDB file of {self.store.name!r} is not reachable from this machine ({source}); "
                              f"drill copies the server's dump.rdb, so it must run where the file is")
        if aof is not None and not (aof / "").is_dir():
            raise BackupError(f"the AOF folder of {self.store.name!r} is not reachable from this machine ({aof})")
        created = time.time()
        backup_id = f"{self.store.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
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
            id=backup_id, store=self.store.name, kind="redis", format="redis-rdb" if aof is None else AOF_FORMAT,
            path=final, sha256=digest,
            size=final.stat().st_size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions={"redis-server": version}, server_version=version, fingerprint=fingerprint)

    def _aof_location(self, client: redis.Redis) -> Path | None:
        """The AOF folder when the server keeps one (Redis 7: appendonlydir/), else None."""
        if self.store.server.local is not None:
            return self.store.server.local.aof_dir if self.store.server.local.appendonly else None
        try:
            enabled: Any = client.config_get("appendonly")
            if str(enabled.get("appendonly")) != "yes" or self.store._major() < 7:
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
                raise BackupError(f"an AOF rewrite of {self.store.name!r} did not finish in {BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.05)

    def _bgsave(self, client: redis.Redis, progress: Progress) -> float:
        """Issue BGSAVE (after any save already running) and wait for it; returns when it was issued."""
        deadline = time.monotonic() + BGSAVE_TIMEOUT
        while True:
            persistence: Any = client.info("persistence")
            if not int(persistence.get("rdb_bgsave_in_progress", 0)):
                break
            if time.monotonic() > deadline:
                raise BackupError(f"a background save of {self.store.name!r} already running did not finish in "
                                  f"{BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.05)
        # INFO persistence: rdb_saves counts finished saves (Redis 7); rdb_last_save_time is LASTSAVE.
        before_saves = int(persistence.get("rdb_saves", -1))
        before_lastsave = int(persistence.get("rdb_last_save_time", 0))
        consistent_at = time.time()
        client.bgsave()
        progress(f"BGSAVE issued on {self.store.name}")
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
                raise BackupError(f"BGSAVE of {self.store.name!r} failed (rdb_last_bgsave_status: err); see the "
                                  f"server log")
            if time.monotonic() > deadline:
                raise BackupError(f"BGSAVE of {self.store.name!r} did not finish within {BGSAVE_TIMEOUT:.0f}s")
            time.sleep(0.02)
        if str(persistence.get("rdb_last_bgsave_status")) != "ok":
            raise BackupError(f"BGSAVE of {self.store.name!r} failed (rdb_last_bgsave_status: "
                              f"{persistence.get('rdb_last_bgsave_status')}); see the server log")
        return consistent_at

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """Prove the backup is the file BGSAVE wrote (sha256) and an RDB file, before anything is touched."""
        if found_backups.is_found(artifact):  # made outside drill: its sha256 as found, header and checksum
            found_backups.check_found(artifact)
            return
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
