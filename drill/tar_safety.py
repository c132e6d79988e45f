"""Tar archives are data, never a program: the one set of rules for every kind that reads a tar.

A backup's tar (a Docker volume's `.tar.gz`, a tar.gz of a mongodump folder, a PostgreSQL base
backup, a config or certificate archive) may have been written by anyone who can write to the
backup disk. Before anything is extracted, every member is checked: no absolute name, no `..`,
no hard link to a name outside the archive's root, no symbolic link whose target leaves it, no
device or FIFO. The whole archive is read through first (gzip to its end, where its CRC is
checked), so a truncated or corrupt archive is refused before a target is touched; extraction
then uses Python's `data` filter as a second line of defence.
"""

from __future__ import annotations

import contextlib
import gzip
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from drill.errors import BackupError

CHUNK = 1 << 20
Visitor = Callable[[tarfile.TarInfo, IO[bytes] | None], None]


def escape(member: tarfile.TarInfo) -> str | None:
    """How a member would reach outside the folder it is extracted into (None: it stays inside)."""
    name = member.name
    if name.startswith("/") or ".." in PurePosixPath(name).parts:
        return f"an entry outside its folder: {name!r}"
    if member.islnk() and (member.linkname.startswith("/") or ".." in PurePosixPath(member.linkname).parts):
        return f"a hard link {name!r} to {member.linkname!r}, outside its folder"
    if member.issym():
        target = member.linkname
        depth = len([p for p in PurePosixPath(name).parent.parts if p not in (".", "")])
        for part in PurePosixPath(target).parts:
            if part == "..":
                depth -= 1
            elif part not in (".", ""):
                depth += 1
            if depth < 0:
                break
        if target.startswith("/") or depth < 0:
            return f"a symbolic link {name!r} -> {target!r}, which leaves its folder"
    if member.ischr() or member.isblk() or member.isfifo():
        return f"a device or FIFO {name!r}"
    return None


def member_path(name: str) -> str:
    """`./a/b/` -> `a/b`; the root itself -> ''."""
    name = name.removeprefix("./").rstrip("/")
    return "" if name in (".", "") else name


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[tarfile.TarFile, IO[bytes]]]:
    raw: IO[bytes] = gzip.open(path, "rb") if is_gzip(path) else path.open("rb")  # type: ignore[assignment]  # noqa: SIM115
    with raw, tarfile.open(fileobj=raw, mode="r|") as archive:
        yield archive, raw


def read_through(path: Path, visit: Visitor | None = None, *, what: str = "tar archive") -> list[str]:
    """Read every member of a tar (gzip'd or not) to its end, checking each name; the members' paths.

    `visit` sees each member and, for a regular file, its content (read it or not). A truncated,
    corrupt or unsafe archive is a BackupError in one line naming the file."""
    names: list[str] = []
    try:
        with _open(path) as (archive, raw):
            for member in archive:
                problem = escape(member)
                if problem:
                    raise BackupError(f"{path} holds {problem}; nothing was extracted")
                names.append(member_path(member.name))
                data = archive.extractfile(member) if member.isfile() else None
                if visit is not None:
                    visit(member, data)
                if data is not None:
                    while data.read(CHUNK):
                        pass
            # tar stops at its end-of-archive blocks; gzip checks its CRC and length only at the very end.
            while raw.read(CHUNK):
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is not a readable {what}: {_reason(exc)}") from None
    return names


def extract(path: Path, target: Path, *, what: str = "tar archive") -> None:
    """Extract a tar (gzip'd or not) into `target` after reading it through (read_through's checks)."""
    read_through(path, what=what)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with _open(path) as (archive, _raw):
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} could not be extracted: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in reason.lower() or "truncated" in reason.lower():
        return f"it is truncated ({reason})"
    return reason
