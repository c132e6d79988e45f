"""How a kind reads the backups production's own tools make (pg_dump | gzip, mongodump, dump.rdb, tar, exports).

drill's own backups carry a manifest and a fingerprint. Backups made outside drill carry nothing but
their bytes: a kind that can read such backups says which formats it knows and how to tell them
apart by their content (never by their name), and how to read one completely. It names a reader
object in `KindSpec.formats` ("module:attribute"), imported only when a found backup is read, so a
kind's declaration stays light.

The reader is what `drill backups verify` runs on a `[stores.NAME] backups` glob, what a drill runs
on the newest match of `the latest backup of ... in "..."` before it restores it, and what says
"this file is not a Redis backup" when a glob finds a file of another kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from drill.errors import BackupError

if TYPE_CHECKING:
    from drill.stores.kinds import KindSpec


@dataclass(frozen=True)
class BackupFormat:
    name: str  # as results and `drill backups list` show it: "mongodump-archive.gz"
    summary: str  # what makes it, for people: "mongodump --archive --gzip"
    folder: bool = False  # a folder (found by a glob ending in `/`), not a file


class WrongFormat(BackupError):
    """A found backup is not one the store's kind can read (a file of another kind behind a glob)."""


@runtime_checkable
class FormatReader(Protocol):
    formats: tuple[BackupFormat, ...]

    def identify(self, path: Path) -> BackupFormat | None:
        """The format of a file or folder, from its content (its first bytes, the names inside it), or None when
        it is none of the kind's formats. Cheap: it reads the start, never the whole backup."""

    def check(self, path: Path, fmt: BackupFormat) -> None:
        """Read it completely in its format (a gzip stream to its end, a tar through, every BSON document...);
        BackupError, one line naming the file, when it is not whole. Nothing more: no restore."""


def reader_of(spec: KindSpec) -> FormatReader | None:
    """The kind's reader of backups made outside drill, or None when it declares none."""
    if not spec.formats:
        return None
    module, _, attribute = spec.formats.partition(":")
    reader = getattr(importlib.import_module(module), attribute)
    if not isinstance(reader, FormatReader):
        raise BackupError(f"the kind {spec.kind!r} names {spec.formats} as its reader of backup formats, which has "
                          f"no formats/identify/check")
    return reader


def identify(spec: KindSpec, reader: FormatReader, path: Path) -> BackupFormat:
    """The format of a found backup, or WrongFormat in one line naming the file, what it is and what the kind reads."""
    found = reader.identify(path)
    if found is not None:
        return found
    known = ", ".join(f"{f.summary}" for f in reader.formats)
    raise WrongFormat(f"{path} is not a {spec.display_name} backup: {describe_content(path, but_not=spec.kind)}; a "
                      f"{spec.display_name} store reads {known}")


def head(path: Path, size: int = 4096) -> bytes:
    """The first bytes of a file (b"" for a folder or an empty file)."""
    if path.is_dir():
        return b""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None


GZIP_MAGIC = b"\x1f\x8b"
TAR_MAGIC_AT = 257  # "ustar" in every POSIX tar header


def describe_content(path: Path, *, but_not: str = "") -> str:
    """What a file that is not of the expected kind is, in a few words, for error messages: another kind's
    backup when another kind's reader recognises it, else what its first bytes look like."""
    from drill.stores import kinds

    for spec in kinds.all_kinds().values():
        reader = reader_of(spec) if spec.kind != but_not else None
        if reader is None:
            continue
        try:
            found = reader.identify(path)
        except (BackupError, OSError):
            continue
        if found is not None:
            return f"it is a {spec.display_name} backup ({found.summary})"
    if path.is_dir():
        return "it is a folder"
    data = head(path, 1024)
    if not data:
        return "it is empty"
    if data.startswith(GZIP_MAGIC):
        return "it is gzip data"
    if data[TAR_MAGIC_AT:TAR_MAGIC_AT + 5] == b"ustar":
        return "it is a tar archive"
    if b"\0" in data:
        return f"it is binary data starting with {data[:8].hex()}"
    return f"it is text starting with {data[:40].decode('utf-8', 'replace').splitlines()[0]!r}"
