"""Firestore backups made outside drill: the folder a managed export writes (`gcloud firestore export`).

Its layout, the same from Cloud Firestore's export and from the emulator's export endpoint:

    <export>/<export>.overall_export_metadata          records naming each collection group's metadata
    <export>/all_namespaces/<kind>/all_namespaces_<kind>.export_metadata   a message naming its output files
    <export>/all_namespaces/<kind>/output-0, output-1 ...                  the documents

The `.overall_export_metadata` and the `output-N` files are LevelDB log files: 32 KiB blocks of
records, each with a masked CRC-32C of its type and bytes. The check reads the overall metadata,
finds every `.export_metadata` it names, the output files each of those names, and reads every
output file through, record by record, checking each CRC: a missing or truncated output file is
refused in one line naming it. The documents themselves are only decoded by the restore, which
imports the export into a throwaway emulator (drill.stores.firestore.transfers).
"""

from __future__ import annotations

import contextlib
import re
import struct
from pathlib import Path

from drill.errors import BackupError
from drill.stores.formats import BackupFormat

EXPORT = BackupFormat("firestore-export", "managed-export folders (gcloud firestore export: "
                                          "*.overall_export_metadata, export_metadata and output-N files)", folder=True)
OVERALL_SUFFIX = ".overall_export_metadata"
KIND_SUFFIX = ".export_metadata"
BLOCK = 32768
HEADER = 7  # masked crc32c (4), length (2), type (1)
_RECORD_TYPES = {1, 2, 3, 4}  # full, first, middle, last


def export_root(path: Path) -> Path | None:
    """The folder holding the `.overall_export_metadata`: the one found, or its only subfolder (the emulator
    writes <dir>/firestore_export_<time>/)."""
    if not path.is_dir():
        return None
    if any(p.name.endswith(OVERALL_SUFFIX) for p in path.iterdir() if p.is_file()):
        return path
    children = [p for p in path.iterdir() if p.is_dir()]
    if len(children) == 1 and any(p.name.endswith(OVERALL_SUFFIX) for p in children[0].iterdir() if p.is_file()):
        return children[0]
    return None


def overall_metadata(root: Path) -> Path:
    found = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(OVERALL_SUFFIX))
    if len(found) != 1:
        raise BackupError(f"{root} is not a Firestore export folder: it holds {len(found)} *{OVERALL_SUFFIX} files")
    return found[0]


def _masked_crc32c(data: bytes) -> int:
    import google_crc32c

    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def log_records(path: Path) -> list[bytes]:
    """The records of a LevelDB log file, each CRC checked; BackupError naming the file when it is not whole."""
    data = path.read_bytes()
    records: list[bytes] = []
    pending = b""
    pos = 0
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's trailer: zeros
            pos += left
            continue
        if pos + HEADER > len(data):
            raise BackupError(f"{path} is truncated: it ends inside a record header (byte {pos})")
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:  # zero padding up to the end of a block
            pos += left
            continue
        body = data[pos + HEADER:pos + HEADER + length]
        if kind not in _RECORD_TYPES or len(body) != length:
            raise BackupError(f"{path} is truncated or corrupt at byte {pos}: a record of type {kind} and "
                              f"{length} bytes does not fit")
        if _masked_crc32c(bytes([kind]) + body) != crc:
            raise BackupError(f"{path} is corrupt: the record at byte {pos} fails its CRC-32C")
        pending = body if kind in (1, 2) else pending + body
        if kind in (1, 4):
            records.append(pending)
            pending = b""
        pos += HEADER + length
    return records


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def message_strings(data: bytes, depth: int = 0) -> list[str]:
    """Every text field of a protocol-buffer message, nested messages included (read without its schema: the
    export's metadata names files, and those names are all drill needs from it)."""
    found: list[str] = []
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            wire = key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                chunk = data[pos:pos + length]
                if len(chunk) != length:
                    raise ValueError("short field")
                pos += length
                nested = message_strings(chunk, depth + 1) if depth < 6 else []
                if nested:
                    found += nested
                else:
                    with contextlib.suppress(UnicodeDecodeError):
                        found.append(chunk.decode("utf-8"))
            else:
                raise ValueError("bad wire type")
    except ValueError:
        return [] if depth else found
    return found


def output_files(root: Path) -> list[Path]:
    """Every output file the export's metadata names (each collection group's export_metadata, in turn)."""
    overall = overall_metadata(root)
    kinds = [s for record in log_records(overall) for s in message_strings(record) if s.endswith(KIND_SUFFIX)]
    if not kinds:
        raise BackupError(f"{overall} names no collection group (*{KIND_SUFFIX}): it is not a Firestore export's "
                          f"metadata")
    outputs: list[Path] = []
    for relative in kinds:
        metadata = root / relative
        if ".." in Path(relative).parts or relative.startswith("/"):
            raise BackupError(f"{overall} names {relative!r}, outside the export folder")
        if not metadata.is_file():
            raise BackupError(f"{metadata} is missing: {overall.name} names it")
        names = [s for s in message_strings(metadata.read_bytes()) if s.startswith("output-")]
        if not names:
            raise BackupError(f"{metadata} names no output file")
        outputs += [metadata.parent / name for name in names if "/" not in name]
    return outputs


_APP_ID = re.compile(r"[a-z]+~([a-z][a-z0-9-]{4,62}[a-z0-9])")  # "s~my-project" (the emulator: "dev~my-project")


def source_project(root: Path) -> str | None:
    """The project the export was made from, as its documents' keys name it (an import into a project of that id
    keeps the references between its documents readable), or None for an export without documents."""
    for output in output_files(root):
        if output.is_file():
            for record in log_records(output)[:1]:
                for text in message_strings(record):
                    found = _APP_ID.fullmatch(text)
                    if found:
                        return found.group(1)
    return None


def check_export(path: Path) -> None:
    root = export_root(path)
    if root is None:
        raise BackupError(f"{path} is not a Firestore export folder: no *{OVERALL_SUFFIX} in it")
    for output in output_files(root):
        if not output.is_file():
            raise BackupError(f"{output} is missing: the export's metadata names it")
        log_records(output)


class FirestoreFormats:
    formats = (EXPORT,)

    def identify(self, path: Path) -> BackupFormat | None:
        return EXPORT if export_root(path) is not None else None

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt != EXPORT:
            raise BackupError(f"{path}: Firestore stores do not read the format {fmt.name!r}")
        check_export(path)


READER = FirestoreFormats()
