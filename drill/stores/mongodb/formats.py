"""MongoDB backups made outside drill: mongodump's folders, a tar.gz of one, and mongodump --archive.

- a mongodump folder: `mongodump --out=DIR` writes `DIR/<db>/<collection>.bson` (concatenated BSON
  documents) and `<collection>.metadata.json` (options and indexes in canonical Extended JSON),
  `.bson.gz` and `.metadata.json.gz` with --gzip. The folder found may be DIR or DIR/<db>;
- a `.tar.gz` of such a folder (the runbook: `notifydb_*.tar.gz`, extracted, then `mongorestore
  --db notifydb DIR/notifydb`);
- `mongodump --archive` (with `--gzip`, the whole stream gzip'd), whose layout MongoDB documents
  (mongo-tools common/archive/spec.md): the magic number 0x8199e26d (little-endian), a header
  document, one metadata document per collection, the terminator 0xFFFFFFFF, then segments: a
  namespace header {db, collection, EOF: false}, documents, the terminator; and per collection
  an EOF header {db, collection, EOF: true, CRC} where CRC is the CRC-64 (Go's crc64.ECMA, i.e.
  CRC-64/XZ) of all its documents' bytes, then the terminator.

Read with pymongo's `bson` only; mongodump and mongorestore are not needed. Checked by decoding
every document (and, for archives, every collection's CRC); restored by laying the backup out as a
mongodump folder in a private temporary folder and restoring that (drill.stores.mongodb.store).
"""

from __future__ import annotations

import gzip
import json
import struct
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import bson
import bson.errors

from drill import tar_safety
from drill.errors import BackupError
from drill.stores.formats import BackupFormat, head

FOLDER = BackupFormat("mongodump-folder", "mongodump folders (<db>/<collection>.bson and .metadata.json)",
                      folder=True)
TAR_GZ = BackupFormat("mongodump-tar.gz", "tar.gz files of a mongodump folder (notifydb_*.tar.gz)")
ARCHIVE = BackupFormat("mongodump-archive", "mongodump --archive files")
ARCHIVE_GZ = BackupFormat("mongodump-archive.gz", "mongodump --archive --gzip files")
MAGIC = struct.pack("<I", 0x8199E26D)
TERMINATOR = b"\xff\xff\xff\xff"
_BSON_SUFFIXES = (".bson", ".bson.gz")
_MAX_DOCUMENT = 48 * 1024 * 1024  # mongod's limit is 16 MiB; mongodump never writes more


def _crc64_xz() -> Any:
    import anycrc  # Go's crc64 with the ECMA table, as mongodump computes it

    return anycrc.Model("CRC64-XZ")


def _bson_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_BSON_SUFFIXES))


def database_dirs(root: Path) -> list[Path]:
    """The database folders of a mongodump folder: DIR/<db>/ holding .bson files, or the folder itself."""
    if _bson_files(root):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _bson_files(p))


def _open_maybe_gz(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")  # type: ignore[return-value]


def _decode_all(handle: IO[bytes], label: str) -> int:
    count = 0
    try:
        for _ in bson.decode_file_iter(handle):
            count += 1
    except (bson.errors.BSONError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{label} does not decode completely after {count} documents: {exc}") from None
    return count


def _check_metadata(handle: IO[bytes], label: str) -> None:
    try:
        json.loads(handle.read().decode("utf-8"))
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{label} is not readable metadata (Extended JSON): {exc}") from None


def check_folder(root: Path) -> None:
    databases = database_dirs(root)
    if not databases:
        raise BackupError(f"{root} is not a mongodump folder: no <collection>.bson file in it or in a folder in it")
    for folder in databases:
        for path in sorted(folder.iterdir()):
            if path.name.endswith(_BSON_SUFFIXES):
                with _open_maybe_gz(path) as handle:
                    _decode_all(handle, str(path))
            elif path.name.endswith((".metadata.json", ".metadata.json.gz")):
                with _open_maybe_gz(path) as handle:
                    _check_metadata(handle, str(path))


def check_tar_gz(path: Path) -> None:
    bson_members = 0

    def visit(member: Any, data: IO[bytes] | None) -> None:
        nonlocal bson_members
        label = f"{path}: {member.name}"
        if data is None:
            return
        if member.name.endswith(_BSON_SUFFIXES):
            bson_members += 1
            plain: IO[bytes] = gzip.GzipFile(fileobj=data) if member.name.endswith(".gz") else data  # type: ignore[assignment]
            _decode_all(plain, label)
        elif member.name.endswith(".metadata.json"):
            _check_metadata(data, label)

    tar_safety.read_through(path, visit, what="tar.gz of a mongodump folder")
    if not bson_members:
        raise BackupError(f"{path} holds no <collection>.bson file: it is not a tar.gz of a mongodump folder")


# -- mongodump --archive ------------------------------------------------------------------------------------

@dataclass
class ArchiveCollection:
    db: str
    collection: str
    metadata: str = ""  # canonical Extended JSON, as <collection>.metadata.json holds it
    documents: int = 0
    crc: int = 0
    ended: bool = False


@dataclass
class ArchiveReader:
    """Reads a mongodump archive stream: the prelude, then every segment, checking each collection's CRC."""

    handle: IO[bytes]
    label: str
    header: dict[str, Any] = field(default_factory=dict)
    collections: dict[tuple[str, str], ArchiveCollection] = field(default_factory=dict)

    def _exact(self, size: int, what: str) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise BackupError(f"{self.label} is truncated: it ends inside {what}")
        return data

    def _document(self, what: str, first: bytes | None = None) -> bytes:
        start = first if first is not None else self._exact(4, what)
        length = struct.unpack("<i", start)[0]
        if not 5 <= length <= _MAX_DOCUMENT:
            raise BackupError(f"{self.label} is corrupt: {what} claims {length} bytes")
        return start + self._exact(length - 4, what)

    def _decode(self, raw: bytes, what: str) -> dict[str, Any]:
        try:
            return bson.decode(raw)
        except bson.errors.BSONError as exc:
            raise BackupError(f"{self.label} is corrupt: {what} does not decode ({exc})") from None

    def prelude(self) -> None:
        if self._exact(4, "its magic number") != MAGIC:
            raise BackupError(f"{self.label} is not a mongodump archive: it does not start with the magic number")
        self.header = self._decode(self._document("its header"), "its header")
        while True:
            start = self._exact(4, "its collection list")
            if start == TERMINATOR:
                return
            meta = self._decode(self._document("a collection's metadata", start), "a collection's metadata")
            key = (str(meta.get("db", "")), str(meta.get("collection", "")))
            self.collections[key] = ArchiveCollection(*key, metadata=str(meta.get("metadata", "")))

    def segments(self) -> Iterator[tuple[ArchiveCollection, bytes]]:
        """Every document of the archive with its collection, checking CRCs and that every collection ends."""
        crc = _crc64_xz()
        while True:
            start = self.handle.read(4)
            if not start:
                break
            if len(start) != 4:
                raise BackupError(f"{self.label} is truncated: it ends inside a namespace header")
            header = self._decode(self._document("a namespace header", start), "a namespace header")
            key = (str(header.get("db", "")), str(header.get("collection", "")))
            coll = self.collections.setdefault(key, ArchiveCollection(*key))
            if header.get("EOF"):
                if self._exact(4, "the end of a collection") != TERMINATOR:
                    raise BackupError(f"{self.label} is corrupt: no terminator after the end of {key[0]}.{key[1]}")
                expected = int(header.get("CRC", 0)) & ((1 << 64) - 1)
                if expected and coll.crc != expected:
                    raise BackupError(f"{self.label} is corrupt: collection {key[0]}.{key[1]} has CRC-64 "
                                      f"{coll.crc:016x}, its end says {expected:016x}")
                coll.ended = True
                continue
            while True:
                first = self._exact(4, f"collection {key[0]}.{key[1]}")
                if first == TERMINATOR:
                    break
                raw = self._document(f"a document of {key[0]}.{key[1]}", first)
                coll.crc = crc.calc(raw, coll.crc)
                coll.documents += 1
                yield coll, raw
        unended = [f"{c.db}.{c.collection}" for c in self.collections.values() if not c.ended and c.db]
        if unended:
            raise BackupError(f"{self.label} is truncated: collection(s) {', '.join(unended[:5])} never end")


def open_archive(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if head(path, 2) == b"\x1f\x8b" else path.open("rb")  # type: ignore[return-value]


def check_archive(path: Path) -> None:
    try:
        with open_archive(path) as handle:
            reader = ArchiveReader(handle, str(path))
            reader.prelude()
            for _coll, raw in reader.segments():
                try:
                    bson.decode(raw)
                except bson.errors.BSONError as exc:
                    raise BackupError(f"{path} is corrupt: a document does not decode ({exc})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is not a readable mongodump archive: {exc}") from None


def archive_to_folder(path: Path, target: Path, database: str | None) -> Path:
    """Lay an archive out as mongodump's folder layout under `target`; the database folder written."""
    with open_archive(path) as handle:
        reader = ArchiveReader(handle, str(path))
        reader.prelude()
        names = sorted({db for db, _ in reader.collections if db})
        chosen = database if database in names else (names[0] if len(names) == 1 else None)
        if chosen is None:
            raise BackupError(f"{path} holds the databases {', '.join(names) or 'none'}; none is {database!r}")
        folder = target / chosen
        folder.mkdir(parents=True)
        outputs: dict[str, IO[bytes]] = {}
        try:
            for (db, coll), info in reader.collections.items():
                if db == chosen:
                    stem = urllib.parse.quote(coll, safe="$&+:=@")
                    (folder / f"{stem}.metadata.json").write_text(info.metadata or "{}", encoding="utf-8")
                    outputs[coll] = (folder / f"{stem}.bson").open("wb")
            for coll_info, raw in reader.segments():
                if coll_info.db == chosen:
                    outputs[coll_info.collection].write(raw)
        finally:
            for output in outputs.values():
                output.close()
    return folder


class MongoFormats:
    formats = (FOLDER, TAR_GZ, ARCHIVE, ARCHIVE_GZ)

    def identify(self, path: Path) -> BackupFormat | None:
        if path.is_dir():
            return FOLDER if database_dirs(path) else None
        data = head(path, 4)
        if data == MAGIC:
            return ARCHIVE
        if data.startswith(b"\x1f\x8b"):
            try:
                with gzip.open(path, "rb") as handle:
                    plain = handle.read(512)
            except (OSError, EOFError, zlib.error):
                return None
            if plain.startswith(MAGIC):
                return ARCHIVE_GZ
            if plain[257:262] == b"ustar" and self._tar_holds_bson(path):
                return TAR_GZ
        return None

    @staticmethod
    def _tar_holds_bson(path: Path, members: int = 200) -> bool:
        import tarfile

        try:
            with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
                for index, member in enumerate(archive):
                    if member.name.endswith(_BSON_SUFFIXES):
                        return True
                    if index >= members:
                        return False
        except (tarfile.TarError, OSError, EOFError, zlib.error):
            return False
        return False

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt == FOLDER:
            check_folder(path)
        elif fmt == TAR_GZ:
            check_tar_gz(path)
        elif fmt in (ARCHIVE, ARCHIVE_GZ):
            check_archive(path)
        else:
            raise BackupError(f"{path}: MongoDB stores do not read the format {fmt.name!r}")


def as_dump_folder(path: Path, fmt: str, work: Path, database: str) -> Path:
    """The database folder of a found backup in mongodump's layout (extracted or laid out under `work`)."""
    if fmt == FOLDER.name:
        root = path
    elif fmt == TAR_GZ.name:
        root = work / "extracted"
        tar_safety.extract(path, root, what="tar.gz of a mongodump folder")
    elif fmt in (ARCHIVE.name, ARCHIVE_GZ.name):
        return archive_to_folder(path, work / "archive", database)
    else:
        raise BackupError(f"{path}: MongoDB stores do not read the format {fmt!r}")
    candidates = _all_database_dirs(root)
    chosen = [p for p in candidates if p.name == database] or (candidates if len(candidates) == 1 else [])
    if not chosen:
        raise BackupError(f"{path} holds the databases {', '.join(p.name for p in candidates) or 'none'}; none is "
                          f"{database!r}")
    return chosen[0]


def _all_database_dirs(root: Path, depth: int = 3) -> list[Path]:
    """Folders holding .bson files, up to `depth` levels down (a tar may hold dump/<db>/ or <db>/)."""
    found = [root] if _bson_files(root) else []
    if depth > 0:
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            found += _all_database_dirs(child, depth - 1)
    return found


READER = MongoFormats()
