"""Archives of a folder of files made outside drill: `tar -czf ssl-certificates_*.tar.gz -C ssl/certificates .`.

A gzip'd tar, or a plain tar, read through with drill's tar rules (drill.tar_safety): no absolute
or `..` names, no link out of the folder, no device, the gzip stream to its end.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from drill import tar_safety
from drill.errors import BackupError
from drill.stores.formats import BackupFormat, head

TAR_GZ = BackupFormat("tar.gz", "tar.gz files of the folder (tar -czf ssl-certificates_*.tar.gz -C DIR .)")
TAR = BackupFormat("tar", "tar files of the folder (tar -cf NAME.tar -C DIR .)")


def _tar_header(data: bytes) -> bool:
    return data[257:262] == b"ustar"


class FilesFormats:
    formats = (TAR_GZ, TAR)

    def identify(self, path: Path) -> BackupFormat | None:
        if path.is_dir():
            return None
        data = head(path, 512)
        if data.startswith(b"\x1f\x8b"):
            try:
                with gzip.open(path, "rb") as handle:
                    return TAR_GZ if _tar_header(handle.read(512)) else None
            except (OSError, EOFError, zlib.error):
                return None
        return TAR if _tar_header(data) else None

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt not in (TAR_GZ, TAR):
            raise BackupError(f"{path}: files stores do not read the format {fmt.name!r}")
        tar_safety.read_through(path, what=fmt.name)


READER = FilesFormats()
