"""Redis backups that carry the AOF: a tar of dump.rdb and appendonlydir/ (manifest, base and incr files),
checked before it is placed, and placed into a server's data folder."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path

from drill.errors import BackupError
from drill.stores.base import BackupArtifact
from drill.stores.redis.formats import AOF_FOLDER, DEFAULT_MANIFEST
from drill.stores.redis.local import (
    AOF_DIR,
    RDB_NAME,
)

RDB_MAGIC = b"REDIS"
AOF_FORMAT = "redis-rdb+aof"  # a tar of dump.rdb and appendonlydir/ (manifest, base and incr files)
AOF_BASENAME = "appendonly.aof"


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


def carries_aof(artifact: BackupArtifact) -> bool:
    """A backup a server loads from its AOF (started with appendonly yes): drill's RDB+AOF tar or an AOF folder."""
    return artifact.format in (AOF_FORMAT, AOF_FOLDER.name)


def _place_backup(artifact: BackupArtifact, directory: Path) -> None:
    """Put a backup's files where a server starting in `directory` loads them."""
    if artifact.format == AOF_FOLDER.name:  # a copy of production's appendonlydir/, found by a glob
        if not (artifact.path / DEFAULT_MANIFEST).is_file():
            raise BackupError(f"{artifact.path} has no {DEFAULT_MANIFEST}: drill restores AOF folders written with "
                              f"Redis' default appendfilename (appendonly.aof)")
        shutil.copytree(artifact.path, directory / AOF_DIR, symlinks=False)
        return
    if artifact.format != AOF_FORMAT:
        partial = directory / f".{RDB_NAME}.partial"
        shutil.copyfile(artifact.path, partial)
        os.replace(partial, directory / RDB_NAME)
        return
    with tarfile.open(artifact.path, "r") as tar:
        tar.extractall(directory, filter="data")  # names were checked by verify_backup; "data" refuses escapes


# -- fingerprints ---------------------------------------------------------------------------------------------
