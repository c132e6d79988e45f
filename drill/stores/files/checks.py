"""Files counts by path pattern and the self-test's planted change (one file's last byte flipped).

Paths are relative to the store's folder and read as drill.name_patterns does (`*` within one
directory, `**` across them); only regular files count, drill's markers left out, as `count` does.
The planted change rewrites the first regular file (in path order) with its last byte flipped, same
size and mode, so only its content hash can see it; the undo writes the original bytes back and
restores its modification time.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from drill import name_patterns
from drill.errors import StoreError
from drill.stores.capabilities import PlantedChange

if TYPE_CHECKING:
    from drill.stores.files.store import FilesStore


def _regular_files(store: FilesStore) -> list[str]:
    from drill.stores.files.store import _entries

    return [relative for relative, info in _entries(store.root) if stat.S_ISREG(info.st_mode)]


def count_matching(store: FilesStore, pattern: str) -> int:
    return sum(1 for relative in _regular_files(store) if name_patterns.matches(pattern, relative))


def plant_change(store: FilesStore, root_part: str) -> PlantedChange:
    files = _regular_files(store)
    if not files:
        raise StoreError(f"the self-test found no file to change in files store {store.name!r} ({store.root})")
    relative = files[0]
    path: Path = store.root / relative
    original = path.read_bytes()
    times = path.stat()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]) if original else b"~")

    def undo() -> None:
        path.write_bytes(original)
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))

    part = relative.split("/", 1)[0] if "/" in relative else root_part
    return PlantedChange(part=part, item=f"file {relative}", undo=undo)
