"""The tar stream of a Docker volume: member paths and escapes checked, its fingerprint taken from the very bytes
written into the backup, and the file-like wrappers that stream it."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from drill import tar_safety
from drill.fingerprint import Fingerprint, PartPrint
from drill.stores.volume import KIND

SCHEMA_LIMIT = 5000  # per-file entries kept in a fingerprint (beyond: counts and content hash only)
CHUNK = 1 << 20
ROOT_PART = "."
MARKER_DIR = ".drill-markers"


def _member_path(name: str) -> str:
    """`volume/a/b` (engine archive) or `./a/b` (runbook tar) -> `a/b`; the root itself -> ''."""
    name = name.lstrip("/")
    for prefix in ("volume/", "./"):
        if name.startswith(prefix):
            return name[len(prefix):].rstrip("/")
    return "" if name in ("volume", ".", "") else name.rstrip("/")


def _escapes(member: tarfile.TarInfo) -> str | None:
    """How a tar member would reach outside the volume: the rules every kind applies (drill.tar_safety)."""
    problem = tar_safety.escape(member)
    return problem.replace("its folder", "the volume") if problem else None


def _entry_kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "special"


@dataclass
class _Printer:
    """Builds a volume fingerprint from tar members as they stream past."""

    parts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        if not path or path == MARKER_DIR or path.startswith(MARKER_DIR + "/"):
            return
        kind = _entry_kind(member)
        top = path.split("/", 1)[0] if ("/" in path or kind == "dir") else ROOT_PART
        detail = f"{kind}, mode {member.mode & 0o7777:04o}, owner {member.uid}:{member.gid}"
        if kind == "file":
            digest = hashlib.sha256()
            if data is not None:
                while block := data.read(CHUNK):
                    digest.update(block)
            detail += f", {member.size} bytes, sha256 {digest.hexdigest()[:16]}"
            self.files[top] = self.files.get(top, 0) + 1
        elif kind in ("symlink", "hardlink"):
            detail += f", -> {member.linkname}"
        self.parts.setdefault(top, []).append((path, detail))
        self.files.setdefault(top, 0)

    def fingerprint(self) -> Fingerprint:
        out: dict[str, PartPrint] = {}
        total_entries = sum(len(v) for v in self.parts.values())
        for top, entries in self.parts.items():
            entries.sort()
            content = hashlib.sha256("\n".join(f"{p}\t{d}" for p, d in entries).encode()).hexdigest()
            schema = {p: d for p, d in entries} if total_entries <= SCHEMA_LIMIT else {}
            out[top] = PartPrint(count=self.files.get(top, 0), content=content, schema=schema)
        return KIND.fingerprint(out, taken_at=time.time())


class _StreamReader(io.RawIOBase):
    """A file-like view of the engine's archive stream (an iterator of byte chunks)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        block = bytes(data)
        self.digest.update(block)
        self.target.write(block)
        return len(block)


def _spool(data: IO[bytes]) -> IO[bytes]:
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115
    while block := data.read(CHUNK):
        spooled.write(block)
    spooled.seek(0)
    return spooled
