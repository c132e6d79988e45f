"""Docker volume backups made outside drill: the runbook's `tar -czf NAME_*.tar.gz -C /volume .` through a helper.

One format: a gzip'd tar of the volume's files. It is checked by reading it through with drill's tar
rules (drill.tar_safety: no absolute or `..` names, no link out of the volume, gzip read to its end
where its CRC is checked); the restore is the volume store's own (extracted into the volume by the
engine).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from drill import tar_safety
from drill.errors import BackupError
from drill.stores.formats import BackupFormat, head

TAR_GZ = BackupFormat("tar.gz", "tar.gz files of the volume's folder (tar -czf NAME_*.tar.gz -C /volume .)")


def is_tar_gz(path: Path) -> bool:
    if path.is_dir() or not head(path, 2).startswith(b"\x1f\x8b"):
        return False
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(512)[257:262] == b"ustar"
    except (OSError, EOFError, zlib.error):
        return False


class VolumeFormats:
    formats = (TAR_GZ,)

    def identify(self, path: Path) -> BackupFormat | None:
        return TAR_GZ if is_tar_gz(path) else None

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt != TAR_GZ:
            raise BackupError(f"{path}: Docker volume stores do not read the format {fmt.name!r}")
        tar_safety.read_through(path, what="tar.gz")


READER = VolumeFormats()
