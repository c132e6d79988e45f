"""mongodump's layout read and written: <db>/<collection>.bson[.gz] and .metadata.json, SHA256SUMS, and the
fingerprint of what a dump holds.
"""

from __future__ import annotations

import gzip
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import bson
from bson.codec_options import CodecOptions
from bson.json_util import loads as json_loads
from bson.raw_bson import RawBSONDocument

from drill.errors import BackupError
from drill.fingerprint import Fingerprint, PartPrint
from drill.stores.base import (
    sha256_file,
)
from drill.stores.mongodb.fingerprint import _Accumulator, _print, index_schema
from drill.stores.mongodb.server import MARKER_COLLECTION

SUMS_FILE = "SHA256SUMS"
_RAW = CodecOptions(document_class=RawBSONDocument)


def _open(path: Path, mode: str = "rb") -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    return path.open(mode)


def dump_database_dir(root: Path) -> Path:
    """The one database directory inside a backup."""
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    if len(found) != 1:
        raise BackupError(f"backup {root} must hold exactly one database directory (mongodump layout), "
                          f"found {[p.name for p in found]}")
    return found[0]


@dataclass(frozen=True)
class DumpedCollection:
    name: str
    data: Path  # .bson or .bson.gz
    metadata: dict[str, Any]

    def documents(self, raw: bool = True) -> Iterator[Any]:
        with _open(self.data) as handle:
            yield from bson.decode_file_iter(handle, codec_options=_RAW if raw else CodecOptions())


def file_stem(collection: str) -> str:
    """A collection name as a file name, encoded as mongodump does (Go's url.PathEscape): `/`, `%`, control
    characters and the rest are percent-encoded, so `../../x` becomes `..%2F..%2Fx`, one plain file name."""
    return urllib.parse.quote(collection, safe="$&+:=@")


def dumped_collections(db_dir: Path) -> list[DumpedCollection]:
    out = []
    for data in sorted([*db_dir.glob("*.bson"), *db_dir.glob("*.bson.gz")]):
        stem = data.name.removesuffix(".gz").removesuffix(".bson")
        name = urllib.parse.unquote(stem)
        meta_path = next((p for p in (db_dir / f"{stem}.metadata.json", db_dir / f"{stem}.metadata.json.gz")
                          if p.is_file()), None)
        metadata: dict[str, Any] = {"options": {}, "indexes": [], "collectionName": name}
        if meta_path is not None:
            with _open(meta_path) as handle:
                metadata = json_loads(handle.read().decode("utf-8"))
        out.append(DumpedCollection(name, data, metadata))
    return out


def fingerprint_of_dump(db_dir: Path) -> Fingerprint:
    parts: dict[str, PartPrint] = {}
    for coll in dumped_collections(db_dir):
        if coll.name == MARKER_COLLECTION:
            continue
        acc = _Accumulator()
        for document in coll.documents():
            acc.add(document)
        parts[coll.name] = acc.part(index_schema(coll.metadata.get("indexes", [])))
    return _print(parts)


def write_sums(root: Path) -> str:
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}"
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != SUMS_FILE]
    (root / SUMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sha256_file(root / SUMS_FILE)


# -- seed data -------------------------------------------------------------------------------------------
