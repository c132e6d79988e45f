"""MongoDB: mongodump-layout backups, restores into the same or a new database, per-collection fingerprints.

Backups use mongodump/mongorestore when they are on PATH. Otherwise drill streams every collection
with pymongo into mongodump's own layout, so either tool can read the other's output:

    <backup>/<db>/<collection>.bson           concatenated BSON documents (.bson.gz when gzip'd)
    <backup>/<db>/<collection>.metadata.json  {"options", "indexes", "uuid", "collectionName"}
    <backup>/SHA256SUMS                        sha256 of every file above (the artifact's sha256 is its hash)

A backup is written into `<id>.partial/` and renamed into place only when complete. Without a
replica set there is no snapshot to share, so the backup's fingerprint is computed from the dumped
files themselves (exactly what the backup holds) and checked against the database read just before
the dump; the moment the dump started is the backup's consistent point.

Fingerprints hash each document's canonical BSON (keys sorted recursively: field order does not
count) and sum 64-bit slices of the sha256s, so document order does not count either. Indexes are
keyed by their key spec, not their name: the nx-27017 wire-protocol server used in tests does not
keep custom index names and reports descending keys as ascending (real mongod keeps both; keying by
spec keeps the comparison meaningful on both servers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

import bson
import pymongo
from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.json_util import JSONMode, JSONOptions
from bson.json_util import dumps as json_dumps
from bson.json_util import loads as json_loads
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from drill import found_backups, safe_paths
from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.names import check_name
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    no_progress,
    sha256_file,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.mongodb import KIND, self_test
from drill.stores.mongodb import formats as found_formats
from drill.stores.mongodb.prefetch import documents_ahead
from drill.tool_env import minimal_env

MARKER_COLLECTION = "drill_markers"
SUMS_FILE = "SHA256SUMS"
BATCH = 1000
SEED_COLLECTIONS = ("notifications", "users", "templates")
_RAW = CodecOptions(document_class=RawBSONDocument)
_PLAIN = CodecOptions(document_class=dict)
_EXTENDED = JSONOptions(json_mode=JSONMode.CANONICAL)

Document = dict[str, Any]


@dataclass
class MongoServer:
    """Where a MongoDB store's database lives: a connection URI (never printed) and a redacted description."""

    uri: str
    description: str = ""
    _client: pymongo.MongoClient[Document] | None = field(default=None, repr=False)

    def client(self) -> pymongo.MongoClient[Document]:
        if self._client is None:
            self._client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=15000, connectTimeoutMS=15000,
                                               tz_aware=False, appname="drill")
        return self._client

    def db(self, name: str) -> Database[Document]:
        return self.client()[name]

    def server_version(self) -> str:
        try:
            return str(self.client().admin.command("buildInfo").get("version", "unknown"))
        except PyMongoError as exc:
            raise StoreError(f"cannot reach MongoDB at {self.description}: {redact_text(str(exc))}") from None

    def has_database(self, name: str) -> bool:
        # Not list_database_names(): on nx-27017 a dropped database can reappear there.
        return bool(self.db(name).list_collection_names())

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


class MongoMarkerSink:
    """RPO markers as documents {_id: seq, written_at: client epoch} in drill_markers."""

    def __init__(self, server: MongoServer, database: str) -> None:
        self.server = server
        self.database = database

    def prepare(self) -> None:
        self.server.db(self.database)[MARKER_COLLECTION].find_one()  # fail now, not in the writer thread

    def write(self, marker: Marker) -> None:
        self.server.db(self.database)[MARKER_COLLECTION].insert_one({"_id": marker.seq,
                                                                     "written_at": marker.written_at})

    def newest(self) -> Marker | None:
        found = list(self.server.db(self.database)[MARKER_COLLECTION].find().sort("_id", -1).limit(1))
        return Marker(int(found[0]["_id"]), float(found[0]["written_at"])) if found else None

    def close(self) -> None:
        return None


# -- canonical content -----------------------------------------------------------------------------------


_NESTED = (dict, list, tuple)


def _canonical(value: Any) -> Any:
    """Keys sorted at every level (plain dicts keep insertion order when encoded). Scalars are kept as they
    are without a call each: this runs for every document of every fingerprint."""
    if isinstance(value, dict):
        return {k: (_canonical(v) if isinstance(v, _NESTED) else v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [(_canonical(v) if isinstance(v, _NESTED) else v) for v in value]
    return value


def document_hash(document: Any) -> int:
    """64 bits of the sha256 of the document's canonical BSON (keys sorted at every level).

    A raw document is decoded in one C call (bson.decode into plain dicts), not walked lazily from
    Python: about 4x faster, same bytes hashed."""
    data = bson.decode(document.raw, codec_options=_PLAIN) if isinstance(document, RawBSONDocument) else document
    encoded = bson.encode(_canonical(data))
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big")


def key_spec(key: Any) -> str:
    """An index key as text: `{kind: 1, created_at: -1}` (order of fields kept: it matters)."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in dict(key).items()) + "}"


def index_schema(indexes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    schema: dict[str, str] = {}
    for index in indexes:
        spec = key_spec(index["key"])
        flags = [f for f in ("unique", "sparse") if index.get(f)]
        if "expireAfterSeconds" in index:
            flags.append(f"ttl {index['expireAfterSeconds']}s")
        if "partialFilterExpression" in index:
            flags.append(f"partial {json_dumps(index['partialFilterExpression'], sort_keys=True)}")
        schema[f"index {spec}"] = " ".join([spec, *flags])
    return schema


class _Accumulator:
    def __init__(self) -> None:
        self.count = 0
        self.total = 0

    def add(self, document: Any) -> None:
        self.count += 1
        self.total = (self.total + document_hash(document)) % (1 << 64)

    def part(self, schema: dict[str, str]) -> PartPrint:
        content = hashlib.sha256(f"{self.count}:{self.total}".encode()).hexdigest()[:32]
        return PartPrint(self.count, content, schema)


def _print(parts: dict[str, PartPrint]) -> Fingerprint:
    return KIND.fingerprint(parts, taken_at=time.time())


# -- naming the documents that differ (after a failed comparison) ---------------------------------------

_BSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"), (bson.int64.Int64, "int64"), (int, "int"), (float, "double"), (str, "string"),
    (dict, "object"), (list, "array"), (dt.datetime, "date"), (ObjectId, "objectId"), (bytes, "binData"),
    (bson.binary.Binary, "binData"), (bson.decimal128.Decimal128, "decimal"), (type(None), "null"),
)


def _type_name(value: Any) -> str:
    """The BSON type of a decoded value (`3` is an int, `3.0` a double); ints say int32 or int64 by size."""
    for kind, name in _BSON_TYPES:
        if isinstance(value, kind):
            if name == "int":
                return "int32" if -(2**31) <= cast(int, value) < 2**31 else "int64"
            return name
    return type(value).__name__


def _field_digests(document: Mapping[str, Any]) -> dict[str, tuple[str, bytes]]:
    """Per top-level field: its BSON type and a digest of its canonical BSON (key order inside ignored)."""
    return {key: (_type_name(value), hashlib.sha256(bson.encode(_canonical({key: value}))).digest()[:16])
            for key, value in document.items()}


def _field_changes(was: dict[str, tuple[str, bytes]], now: dict[str, tuple[str, bytes]]) -> list[str]:
    lines = [f"field {k} missing (it is in the backup)" for k in sorted(was.keys() - now.keys())]
    lines += [f"field {k} added (a {now[k][0]})" for k in sorted(now.keys() - was.keys())]
    for key in sorted(was.keys() & now.keys()):
        (was_type, was_digest), (now_type, now_digest) = was[key], now[key]
        if was_type != now_type:
            lines.append(f"field {key} was a {was_type} at the backup, is a {now_type} now")
        elif was_digest != now_digest:
            lines.append(f"field {key} changed value (a {now_type})")
    return lines


def _id_key(document: Mapping[str, Any]) -> bytes:
    return bson.encode({"_id": document.get("_id")})


def _id_text(value: Any) -> str:
    """How a document is named in messages: its _id (an ObjectId's hex, a string as is, others as JSON)."""
    if isinstance(value, ObjectId | str):
        return str(value)
    return json_dumps(value)


# -- the layout on disk ----------------------------------------------------------------------------------


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


def seed_documents(count: int) -> dict[str, list[Document]]:
    """Deterministic documents, `count` in all: 10% templates, 30% users, the rest notifications."""
    rng = random.Random(20240115)
    templates_n = max(1, count // 10) if count >= 3 else 0
    users_n = max(1, count * 3 // 10) if count >= 3 else 0
    notifications_n = count - templates_n - users_n
    base = dt.datetime(2024, 1, 15, 14, 30, 0)
    names = ["Zoë Martín", "Łukasz Żółć", "田中 太郎", "Ömer Çelik", "Ana O'Neil", "Nguyễn Văn A"]
    channels = ["email", "sms", "push"]
    templates = [{"_id": f"tpl-{i:04d}", "channel": channels[i % 3], "subject": f"Sujet n°{i} — ça marche",
                  "body": {"text": f"Hello {{name}}, message {i}", "locale": ["fr", "en", "ja"][i % 3]},
                  "version": i % 5 + 1, "active": i % 4 != 0}
                 for i in range(templates_n)]
    users = [{"_id": ObjectId(f"{0x65a5_0000 + i:08x}{i:016x}"), "email": f"user{i}@example.test",
              "name": names[i % len(names)], "created_at": base + dt.timedelta(minutes=i),
              "prefs": {"channels": channels[: i % 3 + 1], "quiet_hours": None if i % 2 else [22, 7]},
              "score": round(rng.uniform(0, 100), 3), "tags": [f"t{j}" for j in range(i % 4)]}
             for i in range(users_n)]
    notifications = []
    for i in range(notifications_n):
        user = users[i % users_n]["_id"] if users else None
        notifications.append({
            "_id": ObjectId(f"{0x65a6_0000 + i:08x}{i:016x}"), "user_id": user,
            "template": templates[i % templates_n]["_id"] if templates else None,
            "status": ["queued", "sent", "failed", "read"][i % 4], "attempts": i % 3,
            "sent_at": None if i % 4 == 0 else base + dt.timedelta(seconds=37 * i),
            "payload": {"title": f"Nachricht {i} — grüße", "amount": round(rng.uniform(1, 500), 2),
                        "items": [{"sku": f"SKU-{i}-{j}", "qty": j + 1} for j in range(i % 3)]},
            "cost": (i % 7) * 0.125, "big": 2**40 + i,
        })
    return {"templates": templates, "users": users, "notifications": notifications}


# -- the store -------------------------------------------------------------------------------------------


@dataclass
class MongoStore(Guarded):
    name: str
    config: StoreConfig
    server: MongoServer
    database_name: str
    kind: str = KIND.kind
    gzip: bool = False  # gzip the .bson and .metadata.json files of backups (mongodump --gzip)
    # Databases this store created as restore targets on a server it does not own (live): dropped on close.
    scratch: list[str] = field(default_factory=list)

    def database(self) -> Database[Document]:
        """The pymongo Database of this store (for step plugins that set up data or plant faults)."""
        return self.server.db(self.database_name)

    def describe(self) -> dict[str, str]:
        tools = shutil.which("mongodump")
        return {"kind": "mongodb", "database": self.database_name, "location": self.server.description,
                "server_version": self.server.server_version(),
                "tools": f"mongodump ({tools})" if tools else f"pymongo {pymongo.version} (mongodump layout)",
                "provision": self.config.provision}

    # -- data -----------------------------------------------------------------------------------------

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        self.require_writes("seed")
        db = self.database()
        existing = [c for c in db.list_collection_names() if c in SEED_COLLECTIONS]
        if existing:
            raise StoreError(f"cannot seed {self.name!r}: database {self.database_name!r} already has "
                             f"collection(s) {', '.join(sorted(existing))}; seed an empty database")
        try:
            for coll, documents in seed_documents(count).items():
                db.create_collection(coll)
                for start in range(0, len(documents), BATCH):
                    db[coll].insert_many(documents[start:start + BATCH], ordered=True)
                progress(f"seeded {len(documents)} documents into {coll}")
            db["users"].create_index([("email", 1)], name="email_unique", unique=True)
            db["notifications"].create_index([("user_id", 1), ("sent_at", -1)], name="user_sent")
            db["notifications"].create_index([("status", 1)], name="status")
        except PyMongoError as exc:
            raise StoreError(f"seeding {self.name!r} failed: {redact_text(str(exc))}") from None

    def _collections(self) -> list[str]:
        return sorted(c for c in self.database().list_collection_names()
                      if c != MARKER_COLLECTION and not c.startswith("system."))

    def count(self, part: str | None = None) -> int:
        db = self.database()
        if part is not None:
            if part not in db.list_collection_names():
                raise StoreError(f"{self.name!r} has no collection {part!r}")
            return int(db[part].count_documents({}))
        return sum(int(db[c].count_documents({})) for c in self._collections())

    def plant_change(self) -> PlantedChange:
        """The self-test's fault (self_test.py): one more field in one document; undone byte for byte."""
        return self_test.plant_change(self, self._collections())

    def fingerprint(self) -> Fingerprint:
        db = self.database()
        parts: dict[str, PartPrint] = {}
        try:
            for coll in self._collections():
                acc = _Accumulator()
                for document in documents_ahead(db[coll]):  # fetching the next batch while hashing this one
                    acc.add(document)
                parts[coll] = acc.part(index_schema(db[coll].list_indexes()))
        except PyMongoError as exc:
            raise StoreError(f"fingerprinting {self.name!r} failed: {redact_text(str(exc))}") from None
        return _print(parts)

    def explain_differences(self, artifact: BackupArtifact, parts: set[str], limit: int = 10) -> list[str]:
        """Which documents and fields make the named collections differ from the backup (values are never shown).

        Called only after a fingerprint comparison failed: it reads the backup's documents of those collections
        and the store's again, keeping one small digest per field of each document (bounded by the size of the
        differing collections). Nothing for a backup that is not in drill's mongodump layout.
        """
        if not artifact.path.is_dir() or not parts:
            return []
        try:
            dumped = {c.name: c for c in dumped_collections(dump_database_dir(artifact.path)) if c.name in parts}
        except (BackupError, OSError):
            return []
        found: list[str] = []
        more = 0

        def say(line: str) -> None:
            nonlocal more
            if len(found) < limit:
                found.append(line)
            else:
                more += 1

        db = self.database()
        for name in sorted(parts):
            expected = {_id_key(doc): _field_digests(doc) for doc in dumped[name].documents(raw=False)} \
                if name in dumped else {}
            for document in db.get_collection(name, codec_options=_PLAIN).find():
                where = f"document {name}/{_id_text(document.get('_id'))}"
                was = expected.pop(_id_key(document), None)
                if was is None:
                    say(f"{where}: present now but not at the backup")
                    continue
                for line in _field_changes(was, _field_digests(document)):
                    say(f"{where}: {line}")
            for key in expected:
                say(f"document {name}/{_id_text(bson.decode(key).get('_id'))}: missing (it is in the backup)")
        if more:
            found.append(f"... and {more} more")
        return found

    # -- backup ---------------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / backup_id
        partial = directory / f".{backup_id}.partial"
        server_version = self.server.server_version()
        before = self.fingerprint()
        consistent_at = time.time()
        try:
            if shutil.which("mongodump"):
                tool = self._mongodump(partial, progress)
            else:
                self._stream_dump(partial, progress)
                tool = {"pymongo": pymongo.version}
            fingerprint = fingerprint_of_dump(dump_database_dir(partial))
            if fingerprint.parts != before.parts:
                message = (f"the data of {self.name!r} changed while it was being backed up (MongoDB without a "
                           f"replica set has no snapshot); the backup holds the state it read")
                if not self.config.is_live:
                    raise BackupError(message)
                progress(message)
            digest = write_sums(partial)
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial, final)  # only a complete dump gets a name that looks like a backup
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
        return BackupArtifact(
            id=backup_id, store=self.name, kind="mongodb", format="mongodump-gzip" if self.gzip else "mongodump",
            path=final, sha256=digest, size=size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions=tool, server_version=server_version, fingerprint=fingerprint)

    def _stream_dump(self, partial: Path, progress: Progress) -> None:
        db = self.database()
        out = partial / self.database_name
        out.mkdir(parents=True)
        suffix = ".gz" if self.gzip else ""
        try:
            for info in db.list_collections():
                coll = str(info["name"])
                if coll.startswith("system.") or info.get("type", "collection") != "collection":
                    continue
                count = 0
                with _open(out / f"{file_stem(coll)}.bson{suffix}", "wb") as handle:
                    raw = cast("Collection[RawBSONDocument]", db.get_collection(coll, codec_options=_RAW))
                    for document in raw.find().sort("_id", 1):
                        handle.write(document.raw)
                        count += 1
                indexes = [{"v": int(ix.get("v", 2)), **{k: v for k, v in ix.items() if k not in ("v", "ns")}}
                           for ix in db[coll].list_indexes()]
                metadata = {"options": dict(info.get("options", {})), "indexes": indexes, "uuid": "",
                            "collectionName": coll, "type": "collection"}
                with _open(out / f"{file_stem(coll)}.metadata.json{suffix}", "wb") as handle:
                    handle.write(json_dumps(metadata, json_options=_EXTENDED).encode("utf-8"))
                progress(f"dumped {count} documents of {self.database_name}.{coll}")
        except PyMongoError as exc:
            raise BackupError(f"dump of {self.name!r} failed: {redact_text(str(exc))}") from None

    def _tool_config(self, stack: contextlib.ExitStack) -> str:
        """A mongodump/mongorestore --config file holding the URI (so no password shows in `ps`)."""
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drill-mongo-tool-")))
        path = directory / "config.yaml"
        path.touch(mode=0o600)
        path.write_text(f"uri: {json.dumps(self.server.uri)}\n", encoding="utf-8")
        return str(path)

    def _run_tool(self, args: list[str], what: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, env=minimal_env())  # the URI is in a 0600 file
        if done.returncode != 0:
            error = BackupError if what == "mongodump" else StoreError
            raise error(f"{what} of {self.name!r} failed (exit {done.returncode}): "
                        f"{redact_text(done.stderr.strip()[-2000:])}")

    def _mongodump(self, partial: Path, progress: Progress) -> dict[str, str]:
        tool = shutil.which("mongodump")
        assert tool is not None
        progress(f"mongodump of {self.database_name}")
        with contextlib.ExitStack() as stack:
            args = [tool, f"--config={self._tool_config(stack)}", f"--db={self.database_name}",
                    f"--out={partial}", *(["--gzip"] if self.gzip else [])]
            self._run_tool(args, "mongodump")
        return {"mongodump": _tool_version(tool)}

    # -- verify and restore ---------------------------------------------------------------------------

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """Every file's sha256 and every BSON document, before any target is touched."""
        if found_backups.is_found(artifact):  # made outside drill: its sha256 as found, every document decoded
            found_backups.check_found(artifact)
            return
        root = artifact.path
        if not root.is_dir():
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing: {root}")
        sums = root / SUMS_FILE
        if artifact.sha256 is not None:
            if not sums.is_file():
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} has no {SUMS_FILE} ({root})")
            digest = sha256_file(sums)
            if digest != artifact.sha256:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: {SUMS_FILE} has sha256 "
                                  f"{digest}, not {artifact.sha256} recorded when it was taken ({root})")
        if sums.is_file():
            listed: set[str] = set()
            for line in sums.read_text(encoding="utf-8").splitlines():
                expected, _, rel = line.partition("  ")
                listed.add(rel)
                path = root / rel
                if not path.is_file():
                    raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing file {rel} ({root})")
                actual = sha256_file(path)
                if actual != expected:
                    raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: {rel} has sha256 "
                                      f"{actual}, not {expected} recorded when it was taken")
            unlisted = [p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.is_file() and p.name != SUMS_FILE and p.relative_to(root).as_posix() not in listed]
            if unlisted:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} holds files it was not taken with: "
                                  f"{', '.join(sorted(unlisted))}")
        for coll in dumped_collections(dump_database_dir(root)):
            try:
                for _ in coll.documents():
                    pass
            except (bson.errors.BSONError, OSError, EOFError) as exc:
                raise BackupError(f"backup {artifact.id}: {coll.data.name} does not decode completely: {exc}") from None

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        self.verify_backup(artifact)  # before the target is touched
        target = into or self.database_name
        target_store = self if target == self.database_name else MongoStore(
            name=into or self.name, config=replace(self.config, name=into or self.name, destructive=True),
            server=self.server, database_name=target, gzip=self.gzip)
        if self.server.has_database(target):
            if target == self.database_name:
                self.require_destructive("overwrite")
            elif into is not None and self.config.is_live:
                raise StoreError(f"restore target database {target!r} already exists on the live server of "
                                 f"{self.name!r}; name a new database (drill never overwrites one it did not create)")
            self.server.client().drop_database(target)
        if target != self.database_name and self.config.is_live:
            self.scratch.append(target)
        if found_backups.is_found(artifact):
            self._restore_found(artifact, target, progress)
            return target_store
        db_dir = dump_database_dir(artifact.path)
        if shutil.which("mongorestore"):
            self._mongorestore(artifact.path, db_dir.name, target, progress)
        else:
            self._stream_restore(db_dir, target, progress)
        return target_store

    def _restore_found(self, artifact: BackupArtifact, target: str, progress: Progress) -> None:
        """A backup made outside drill (a tar.gz, an archive, a folder) laid out as a mongodump folder in a private
        temporary folder, then restored like drill's own."""
        work = safe_paths.private_temp("drill-mongo-found-")
        try:
            progress(f"reading {artifact.path.name} ({artifact.format})")
            db_dir = found_formats.as_dump_folder(artifact.path, artifact.format, work, self.database_name)
            self._stream_restore(db_dir, target, progress)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _stream_restore(self, db_dir: Path, target: str, progress: Progress) -> None:
        db = self.server.db(target)
        try:
            for coll in dumped_collections(db_dir):
                options = dict(coll.metadata.get("options", {}))
                db.create_collection(coll.name, **options)
                batch: list[RawBSONDocument] = []
                restored = 0
                for document in coll.documents():
                    batch.append(document)
                    if len(batch) >= BATCH:
                        db[coll.name].insert_many(batch, ordered=False)
                        restored += len(batch)
                        batch = []
                if batch:
                    db[coll.name].insert_many(batch, ordered=False)
                    restored += len(batch)
                models = [_index_model(ix) for ix in coll.metadata.get("indexes", []) if ix.get("name") != "_id_"
                          and dict(ix["key"]) != {"_id": 1}]
                if models:
                    db[coll.name].create_indexes(models)
                progress(f"restored {restored} documents and {len(models)} indexes into {target}.{coll.name}")
        except PyMongoError as exc:
            raise StoreError(f"restore into {target!r} failed: {redact_text(str(exc))}") from None

    def _mongorestore(self, root: Path, source_db: str, target: str, progress: Progress) -> None:
        tool = shutil.which("mongorestore")
        assert tool is not None
        gz = any(p.name.endswith(".gz") for p in (root / source_db).iterdir())
        progress(f"mongorestore {source_db} into {target}")
        with contextlib.ExitStack() as stack:
            args = [tool, f"--config={self._tool_config(stack)}", f"--nsInclude={source_db}.*",
                    f"--nsFrom={source_db}.*", f"--nsTo={target}.*", "--drop", *(["--gzip"] if gz else []),
                    str(root)]
            self._run_tool(args, "mongorestore")

    # -- disaster -------------------------------------------------------------------------------------

    def lose(self) -> None:
        self.require_destructive("lose")
        self.remove()

    def exists(self) -> bool:
        return self.server.has_database(self.database_name)

    def remove(self) -> None:
        try:
            self.server.client().drop_database(self.database_name)
        except PyMongoError as exc:
            raise StoreError(f"dropping {self.name!r} failed: {redact_text(str(exc))}") from None

    def restore_target_exists(self, name: str) -> bool:
        return self.server.has_database(name)

    def drop_restore_target(self, name: str) -> None:
        """Drop a database a restore into `name` made (a drill killed before its clean-up left it)."""
        check_name(name, "restore target")
        if name == self.database_name:
            raise StoreError(f"{name!r} is the store's own database, not a restore target")
        try:
            self.server.client().drop_database(name)
        except PyMongoError as exc:
            raise StoreError(f"dropping restore target {name!r} failed: {redact_text(str(exc))}") from None

    def markers(self) -> MongoMarkerSink:
        return MongoMarkerSink(self.server, self.database_name)

    def keep_target(self, name: str) -> None:
        if name in self.scratch:
            self.scratch.remove(name)

    def close(self) -> None:
        for database in self.scratch:
            with contextlib.suppress(PyMongoError):
                self.server.client().drop_database(database)
        self.scratch.clear()


def _index_model(index: dict[str, Any]) -> IndexModel:
    extra = {k: v for k, v in index.items() if k not in ("v", "key", "ns")}
    return IndexModel(list(dict(index["key"]).items()), **extra)


def _tool_version(tool: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    return "unknown"
