"""Redis backups made outside drill: `redis-cli SAVE` + a copy of dump.rdb, or a copy of the AOF folder.

- an RDB file: `REDIS` and a 4-digit version, the data, the EOF opcode 0xFF and (RDB version 5 and
  later) the CRC64 of everything before it, little-endian: checked here as Redis itself checks it
  when it loads the file (CRC-64 with the Jones polynomial, "CRC-64/REDIS");
- an AOF folder (Redis 7, `appendonlydir/`): a manifest (`appendonly.aof.manifest`) naming a base
  file (an RDB, or an AOF of commands) and incremental AOF files. Every file the manifest names
  must be there; the base is checked as an RDB (or read as commands), every incremental file is
  read as RESP commands to its end, so a truncated copy is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from drill.errors import BackupError
from drill.stores.formats import BackupFormat, head

RDB = BackupFormat("redis-rdb", "RDB files (redis-cli SAVE, then a copy of dump.rdb)")
AOF_FOLDER = BackupFormat("redis-aof-folder", "AOF folders (a copy of appendonlydir/ with its manifest)",
                          folder=True)
MANIFEST_SUFFIX = ".manifest"
DEFAULT_MANIFEST = "appendonly.aof.manifest"  # drill's servers start with the default appendfilename
CHUNK = 1 << 20


def _crc64_redis() -> object:
    import anycrc  # the CRC-64 Redis uses (Jones polynomial, reflected, no final xor)

    return anycrc.Model("CRC64-REDIS")


def rdb_version(data: bytes) -> int | None:
    if len(data) >= 9 and data.startswith(b"REDIS") and data[5:9].isdigit():
        return int(data[5:9])
    return None


def check_rdb(path: Path, name: str | None = None) -> None:
    """The RDB header, the EOF opcode and, from RDB version 5 on, the CRC64 of the whole file."""
    label = name or str(path)
    size = path.stat().st_size
    version = rdb_version(head(path, 9))
    if version is None:
        raise BackupError(f"{label} is not a Redis RDB file: it does not start with REDIS and a version")
    if size < 18:
        raise BackupError(f"{label} is truncated: {size} bytes cannot hold an RDB file's header, end and checksum")
    model = _crc64_redis()
    crc = last = 0
    with path.open("rb") as handle:
        remaining = size - 8
        while remaining > 0:
            block = handle.read(min(CHUNK, remaining))
            if not block:
                raise BackupError(f"{label} is truncated: it ended while being read")
            crc = model.calc(block, crc)  # type: ignore[attr-defined]
            remaining -= len(block)
            last = block[-1]
        stored = int.from_bytes(handle.read(8), "little")
    if version < 5:
        return  # no checksum before RDB version 5: the end opcode is the last byte
    if stored == 0:
        return  # written with rdbchecksum no: Redis loads it without a check, and so does drill
    if crc != stored:
        raise BackupError(f"{label} is corrupt: its CRC64 is {crc:016x} but the file ends with {stored:016x} "
                          f"(RDB version {version}, {size} bytes)")
    if last != 0xFF:
        raise BackupError(f"{label} is not a complete RDB file: no end-of-file opcode before its checksum")


def manifest_entries(text: str) -> list[tuple[str, str]]:
    """(file name, type) of each `file NAME seq N type b|h|i` line of a Redis 7 AOF manifest."""
    entries = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "file":
            fields = dict(zip(words[2::2], words[3::2], strict=False))
            entries.append((words[1], fields.get("type", "")))
    return entries


def _manifest(folder: Path) -> Path | None:
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(MANIFEST_SUFFIX))
    return found[0] if len(found) == 1 else None


def _read_line(handle: IO[bytes], label: str) -> bytes:
    line = handle.readline(1 << 16)
    if not line.endswith(b"\r\n"):
        raise BackupError(f"{label} is truncated or not an AOF file: a command ends without CRLF")
    return line[:-2]


def check_aof_commands(path: Path, label: str) -> int:
    """Read an AOF file of RESP commands to its end (`*N`, then N `$len` bulk strings); the commands read."""
    commands = 0
    with path.open("rb") as handle:
        while True:
            first = handle.read(1)
            if not first:
                return commands
            if first == b"#":  # an annotation line (Redis 7 writes timestamps as `#TS:...`)
                _read_line(handle, label)
                continue
            if first != b"*":
                raise BackupError(f"{label} is not an AOF file of commands: byte {handle.tell() - 1} is {first!r}, "
                                  f"not the start of a command")
            count = _number(_read_line(handle, label), label)
            for _ in range(count):
                if handle.read(1) != b"$":
                    raise BackupError(f"{label} is truncated or corrupt: a command's argument is not a bulk string")
                length = _number(_read_line(handle, label), label)
                body = handle.read(length + 2)
                if len(body) != length + 2 or not body.endswith(b"\r\n"):
                    raise BackupError(f"{label} is truncated: it ends inside a command")
            commands += 1


def _number(text: bytes, label: str) -> int:
    if not text.isdigit():
        raise BackupError(f"{label} is corrupt: {text[:20]!r} is not a length")
    return int(text)


class RedisFormats:
    formats = (RDB, AOF_FOLDER)

    def identify(self, path: Path) -> BackupFormat | None:
        if path.is_dir():
            manifest = _manifest(path)
            return AOF_FOLDER if manifest is not None and manifest_entries(manifest.read_text("utf-8", "replace")) \
                else None
        return RDB if rdb_version(head(path, 9)) is not None else None

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt == RDB:
            check_rdb(path)
        elif fmt == AOF_FOLDER:
            check_aof_folder(path)
        else:
            raise BackupError(f"{path}: Redis stores do not read the format {fmt.name!r}")


def check_aof_folder(folder: Path) -> None:
    manifest = _manifest(folder)
    if manifest is None:
        raise BackupError(f"{folder} is not an AOF folder: it holds no single *{MANIFEST_SUFFIX} file")
    entries = manifest_entries(manifest.read_text("utf-8", "replace"))
    missing = [name for name, _ in entries if not (folder / name).is_file() or "/" in name or name.startswith(".")]
    if missing:
        raise BackupError(f"{folder / missing[0]} is missing: the AOF manifest {manifest.name} names it")
    for name, kind in entries:
        path = folder / name
        if kind == "b" and rdb_version(head(path, 9)) is not None:
            check_rdb(path, str(path))
        else:
            check_aof_commands(path, str(path))


READER = RedisFormats()
