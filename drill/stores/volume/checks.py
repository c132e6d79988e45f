"""Volume counts by path pattern and the self-test's planted change (one file's last byte flipped).

Paths are relative to the volume's root and read as drill.name_patterns does (`*` within one
directory, `**` across them); only regular files count, drill's markers left out, as `count` does.
The planted change rewrites the first regular file with the same size, mode and owner and its last
byte flipped, so only its content hash can see it; the undo writes the original bytes back.
"""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

from drill import name_patterns
from drill.errors import StoreError
from drill.stores.capabilities import PlantedChange

if TYPE_CHECKING:
    from drill.stores.volume.store import VolumeStore


def count_matching(store: VolumeStore, pattern: str, marker_dir: str) -> int:
    return sum(1 for path, member, _data in store._stream()
               if member.isfile() and not path.startswith(marker_dir + "/") and name_patterns.matches(pattern, path))


def plant_change(store: VolumeStore, marker_dir: str, root_part: str) -> PlantedChange:
    found: tuple[str, tarfile.TarInfo, bytes] | None = None
    for path, member, data in store._stream():
        if found is None and member.isfile() and data is not None and not path.startswith(marker_dir + "/"):
            found = (path, member, data.read())  # the stream is read to its end: the helper container stops cleanly
    if found is None:
        raise StoreError(f"the self-test found no file to change in volume {store.volume!r}")
    path, member, original = found
    changed = original[:-1] + bytes([original[-1] ^ 0xFF]) if original else b"~"
    store._put(_archive(path, member, changed))

    def undo() -> None:
        store._put(_archive(path, member, original))

    part = path.split("/", 1)[0] if "/" in path else root_part
    return PlantedChange(part=part, item=f"file {path}", undo=undo)


def _archive(path: str, like: tarfile.TarInfo, data: bytes) -> bytes:
    """A one-file tar putting `data` at `path` with `like`'s mode, owner and mtime."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.uid, info.gid, info.mtime = len(data), like.mode, like.uid, like.gid, like.mtime
        info.uname, info.gname = like.uname, like.gname
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
