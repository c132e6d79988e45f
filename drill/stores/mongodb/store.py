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
import random
import shutil
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import ClassVar

import bson
import pymongo
from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from drill import hash_workers
from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.names import check_name
from drill.pause import pause_point
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Progress,
    no_progress,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.mongodb import KIND, self_test
from drill.stores.mongodb.dumps import (
    SUMS_FILE,
    DumpedCollection,
    dump_database_dir,
    dumped_collections,
    file_stem,
    fingerprint_of_dump,
    write_sums,
)
from drill.stores.mongodb.fingerprint import (
    _PLAIN,
    _Accumulator,
    _canonical,
    _field_changes,
    _field_digests,
    _id_key,
    _id_text,
    _print,
    _type_name,
    batch_sums,
    document_hash,
    index_schema,
    key_spec,
)
from drill.stores.mongodb.prefetch import WORKER_CHUNK, batches_ahead, documents_ahead, joined
from drill.stores.mongodb.server import MARKER_COLLECTION, Document, MongoMarkerSink, MongoServer
from drill.stores.mongodb.transfers import BATCH, MongoTransfers

__all__ = ["BATCH", "MARKER_COLLECTION", "SEED_COLLECTIONS", "SUMS_FILE", "Document", "DumpedCollection",
           "MongoMarkerSink", "MongoServer", "MongoStore", "_Accumulator", "_canonical", "_field_changes",
           "_field_digests", "_id_key", "_id_text", "_print", "_type_name", "document_hash", "dump_database_dir",
           "dumped_collections", "file_stem", "fingerprint_of_dump", "index_schema", "key_spec", "seed_documents",
           "write_sums"]

SEED_COLLECTIONS = ("notifications", "users", "templates")


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
class MongoStore(MongoTransfers):
    name: str
    config: StoreConfig
    server: MongoServer
    database_name: str
    kind: str = KIND.kind
    gzip: bool = False  # gzip the .bson and .metadata.json files of backups (mongodump --gzip)
    # Databases this store created as restore targets on a server it does not own (live): dropped on close.
    scratch: list[str] = field(default_factory=list)
    # Its verification hashes documents in Python: in a whole-system restore, in worker processes
    # (drill/hash_workers.py), which are started at the restore's beginning for it.
    hashes_in_workers: ClassVar[bool] = True

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
        workers = hash_workers.current()  # stores verified in parallel: hash in worker processes
        try:
            for coll in self._collections():
                acc = _Accumulator()
                if workers is None:
                    for document in documents_ahead(db[coll]):  # fetching the next batch while hashing this one
                        acc.add(document)
                else:
                    chunks = joined(batches_ahead(db[coll]), WORKER_CHUNK)
                    for count, total in hash_workers.map_ahead(workers, batch_sums, chunks,
                                                               started=self._hashing_started):
                        acc.add_sums(count, total)
                parts[coll] = acc.part(index_schema(db[coll].list_indexes()))
        except PyMongoError as exc:
            raise StoreError(f"fingerprinting {self.name!r} failed: {redact_text(str(exc))}") from None
        except BrokenProcessPool as exc:
            raise StoreError(f"fingerprinting {self.name!r} failed: a hashing worker process ended before it "
                             f"finished ({exc}); the machine may be out of memory, or the process was killed; "
                             f"run the drill again") from None
        return _print(parts)

    def _hashing_started(self) -> None:
        pause_point(f"hashing:{self.name}")  # a test interrupts here, a worker process at work

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

    # -- backup, verify and restore: transfers.py (MongoTransfers) ----------------------------------

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

    def own_restore_target(self, name: str) -> str | None:
        # MongoDB refuses two databases whose names differ only in case: such a name is no new target either.
        return "database" if name.casefold() == self.database_name.casefold() else None

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
