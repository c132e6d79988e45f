"""The Firestore backup file and fingerprints: typed JSON values, the JSON-lines file, collection-path parts.

The backup file, `<id>.firestore.jsonl.gz`, is gzip'd JSON lines:

    {"format": "drill-firestore-jsonl", "version": 1, "project": ..., "read_time": ...}   header
    {"path": "users/u-000001", "fields": {...}}                                            one per document
    {"end": {"documents": N, "fingerprint": {...}}}                                        trailer

Values keep their Firestore types through a tagged encoding: strings, booleans, integers and
doubles are JSON's own (Python's json keeps 3 and 3.0 apart); null is null; arrays are arrays;
everything else is a one-key object: {"$ts": RFC 3339 with microseconds}, {"$geo": [lat, lng]},
{"$ref": "collection/doc"}, {"$bytes": base64}, {"$double": "NaN" | "Infinity" | "-Infinity"},
{"$vector": [...]}; a map is a plain object, wrapped as {"$map": {...}} when one of its keys starts
with "$". References are restored into the target database (a restore into another project points
them at that project).

Fingerprint parts are collection paths with document ids replaced by `*`: `users`,
`users/*/sessions`, `users/*/sessions/*/events` (bounded in number, unlike one part per parent
document). Each part holds a document count, an order-independent content hash (the sum modulo
2**64 of 64 bits of blake2b over each document's full path and canonical typed JSON, keys sorted:
a timestamp and its string form hash differently, so do 1 and 1.0) and, as its schema, the set of
value types seen in each top-level field (`field started_at` -> `timestamp`), so a value whose
type changed is named. drill's RPO markers (collection `drill_markers`) are in backups but not in
fingerprints or counts.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud.firestore_v1 import GeoPoint
from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.firestore_v1.vector import Vector

from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.stores.firestore import KIND

MARKER_COLLECTION = "drill_markers"  # drill's RPO markers: in backups, never in fingerprints or counts
FORMAT = "drill-firestore-jsonl"
VERSION = 1
MAX_FIELDS = 200  # top-level field names tracked per part in the schema (beyond: counted, not named)
_ID = re.compile(r"[^/]+")

Document = dict[str, Any]
_NANOS: Any = DatetimeWithNanoseconds  # partly typed in google-api-core


# -- typed values ---------------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    """The Firestore type of a Python value as the client returns it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, GeoPoint):
        return "geopoint"
    if isinstance(value, DocumentReference):
        return "reference"
    if isinstance(value, Vector):
        return "vector"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list | tuple):
        return "array"
    raise StoreError(f"a Firestore value of unexpected Python type {type(value).__name__}")


def rfc3339(value: dt.datetime) -> str:
    if isinstance(value, DatetimeWithNanoseconds):
        return str(_NANOS.rfc3339(value))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(value: Any) -> Any:
    """A Firestore value as JSON that keeps its type (see the module docstring)."""
    kind = type_name(value)
    if kind in ("null", "boolean", "integer", "string"):
        return value
    if kind == "double":
        return value if math.isfinite(value) else {"$double": repr(value).replace("inf", "Infinity")
                                                   .replace("nan", "NaN")}
    if kind == "bytes":
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if kind == "timestamp":
        return {"$ts": rfc3339(value)}
    if kind == "geopoint":
        return {"$geo": [value.latitude, value.longitude]}
    if kind == "reference":
        return {"$ref": value.path}
    if kind == "vector":
        return {"$vector": [float(x) for x in value]}
    if kind == "map":
        encoded = {str(k): encode(v) for k, v in value.items()}
        return {"$map": encoded} if any(k.startswith("$") for k in encoded) else encoded
    return [encode(v) for v in value]


def decode(value: Any, reference: Callable[[str], Any]) -> Any:
    """The inverse of encode(); `reference(path)` builds a DocumentReference in the target database."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [decode(v, reference) for v in value]
    if not isinstance(value, dict):
        raise ValueError(f"not a Firestore value: {value!r}")
    if len(value) == 1:
        tag, inner = next(iter(value.items()))
        if tag == "$ts":
            return _NANOS.from_rfc3339(str(inner))
        if tag == "$geo":
            latitude, longitude = inner
            return GeoPoint(float(latitude), float(longitude))
        if tag == "$ref":
            if not isinstance(inner, str) or len(inner.split("/")) % 2:
                raise ValueError(f"not a document path: {inner!r}")
            return reference(inner)
        if tag == "$bytes":
            return base64.b64decode(str(inner), validate=True)
        if tag == "$double":
            if inner not in ("NaN", "Infinity", "-Infinity"):
                raise ValueError(f"not a special double: {inner!r}")
            return float(str(inner).replace("Infinity", "inf"))
        if tag == "$vector":
            return Vector([float(x) for x in inner])
        if tag == "$map":
            if not isinstance(inner, dict):
                raise ValueError(f"$map must hold an object, not {inner!r}")
            return {k: decode(v, reference) for k, v in inner.items()}
        if tag.startswith("$"):
            raise ValueError(f"unknown type tag {tag!r}")
    return {k: decode(v, reference) for k, v in value.items()}


def canonical(path: str, fields: Document) -> bytes:
    """A document as bytes that depend only on its path, field names, values and their types."""
    return (path + "\x00" + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                       allow_nan=False)).encode("utf-8")


def part_of(path: str) -> str:
    """`users/u1/sessions/s9` -> `users/*/sessions`: the collection path, document ids as `*`."""
    segments = path.split("/")[:-1]
    return "/".join("*" if i % 2 else s for i, s in enumerate(segments))


def encoded_type(value: Any) -> str:
    """The type of an encoded value (what the schema records), without decoding it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if len(value) == 1:
        tag = next(iter(value))
        names = {"$ts": "timestamp", "$geo": "geopoint", "$ref": "reference", "$bytes": "bytes",
                 "$double": "double", "$vector": "vector", "$map": "map"}
        if tag in names:
            return names[tag]
    return "map"


class _Part:
    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.fields: dict[str, set[str]] = {}
        self.untracked: set[str] = set()

    def add(self, path: str, fields: Document) -> None:
        self.count += 1
        digest = hashlib.blake2b(canonical(path, fields), digest_size=8).digest()
        self.total = (self.total + int.from_bytes(digest, "big")) % (1 << 64)
        for name, value in fields.items():
            types = self.fields.get(name)
            if types is None:
                if len(self.fields) >= MAX_FIELDS:
                    if len(self.untracked) < MAX_FIELDS:
                        self.untracked.add(name)
                    continue
                types = self.fields[name] = set()
            types.add(encoded_type(value))

    def result(self) -> PartPrint:
        content = hashlib.sha256(f"{self.count}:{self.total}".encode()).hexdigest()[:32]
        schema = {f"field {name}": ", ".join(sorted(types)) for name, types in self.fields.items()}
        if self.untracked:
            schema["fields not named"] = f"more than {MAX_FIELDS} field names (content hash still covers them)"
        return PartPrint(self.count, content, schema)


class FingerprintBuilder:
    """Accumulates documents (path + encoded fields) into a fingerprint: memory bounded by the parts."""

    def __init__(self) -> None:
        self.parts: dict[str, _Part] = {}

    def add(self, path: str, fields: Document) -> None:
        if path.split("/", 1)[0] == MARKER_COLLECTION:
            return
        self.parts.setdefault(part_of(path), _Part()).add(path, fields)

    def result(self, read_time: dt.datetime | None = None) -> Fingerprint:
        return KIND.fingerprint({name: part.result() for name, part in sorted(self.parts.items())},
                                taken_at=read_time.timestamp() if read_time else time.time())



# -- the backup file ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupHeader:
    project: str
    read_time: str
    created_at: float


def read_backup(path: Path) -> tuple[BackupHeader, Iterator[tuple[str, Document]], Callable[[], dict[str, Any]]]:
    """The header, an iterator over (path, encoded fields), and a function giving the trailer after iteration.

    Raises BackupError naming the line for anything that is not a complete drill Firestore backup.
    """
    handle = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 (closed by the iterator or on error)
    trailer: dict[str, Any] = {}
    try:
        first = handle.readline()
        header = json.loads(first)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BackupError(f"{path} is not a drill Firestore backup (line 1 has no \"format\": \"{FORMAT}\")")
        if header.get("version") != VERSION:
            raise BackupError(f"{path}: backup format version {header.get('version')} is not supported "
                              f"(this drill reads version {VERSION})")
        info = BackupHeader(str(header["project"]), str(header["read_time"]), float(header["created_at"]))
    except (OSError, EOFError, ValueError, KeyError, gzip.BadGzipFile) as exc:
        handle.close()
        raise BackupError(f"{path} is not a readable drill Firestore backup: {exc}") from None
    except BaseException:
        handle.close()
        raise

    def documents() -> Iterator[tuple[str, Document]]:
        number = 1
        try:
            for number, line in enumerate(handle, start=2):
                record = json.loads(line)
                if "end" in record:
                    trailer.update(record["end"])
                    if handle.readline():
                        raise BackupError(f"{path}:{number + 1}: data after the end of the backup")
                    return
                doc_path, fields = record["path"], record["fields"]
                if not isinstance(doc_path, str) or not doc_path or len(doc_path.split("/")) % 2 \
                        or not all(_ID.fullmatch(s) for s in doc_path.split("/")) or not isinstance(fields, dict):
                    raise ValueError(f"not a document: {line[:120]!r}")
                yield doc_path, fields
            raise BackupError(f"{path} is truncated: it ends at line {number} without its end record "
                              f"(the backup was not completely written)")
        except (OSError, EOFError, ValueError, KeyError, TypeError, gzip.BadGzipFile) as exc:
            raise BackupError(f"{path}:{number}: not a valid backup line: {exc}") from None
        finally:
            handle.close()

    return info, documents(), lambda: trailer
