"""Firestore: streamed, typed backups of every collection (subcollections included), bulk-writer restores
into the same or another project, recursive deletes, and per-collection-path fingerprints.

A store is one project's `(default)` database. drill reads the whole database at one `read_time`
(a consistent snapshot: Firestore reads documents as they were at that moment), top-level
collection by top-level collection, each with one streamed recursive (all-descendants) query, so
every subcollection at any depth comes along and only the documents being read are in memory.

Live stores configured with `export_uri = "gs://bucket/prefix"` are backed up with the Firestore
Admin API's managed export instead (and restored with its import): see `ManagedExport`. The
backup file and fingerprints are described in `firestore_codec`, the seed data in `firestore_seed`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions
from google.cloud.firestore_v1.field_path import FieldPath

from drill import name_patterns
from drill.config import StoreConfig
from drill.errors import StoreError
from drill.fingerprint import Fingerprint
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Marker,
    Progress,
    Store,
    no_progress,
)
from drill.stores.capabilities import PlantedChange
from drill.stores.firestore import KIND, differences
from drill.stores.firestore.codec import (
    MARKER_COLLECTION,
    FingerprintBuilder,
    decode,
    encode,
    part_of,
)
from drill.stores.firestore.common import FLUSH_EVERY, _record_failure, project_id
from drill.stores.firestore.seed import SEED_COLLECTIONS, seed_documents
from drill.stores.firestore.transfers import Transfers

SELF_TEST_FIELD = "drill_self_test"  # the field a self-test adds to one document of a restored copy

# The Google client libraries are only partly typed: their objects are handled as Any here.
Client = Any
Snapshot = Any
_ANONYMOUS: Any = AnonymousCredentials


# -- where a store lives -----------------------------------------------------------------------------------


@dataclass
class FirestoreServer:
    """An emulator (host:port) or the real service (project credentials from Application Default Credentials)."""

    emulator_host: str | None
    description: str
    version: str = "unknown"
    _clients: dict[str, Client] = field(default_factory=dict, repr=False)

    def client(self, project: str) -> Client:
        found = self._clients.get(project)
        if found is None:
            if self.emulator_host is not None:
                # The client reads FIRESTORE_EMULATOR_HOST only in its constructor; several emulators in one
                # process (one per store) cannot share that variable, so the host is set on each client.
                found = firestore.Client(project=project, credentials=_ANONYMOUS())
                found._emulator_host = self.emulator_host
            else:
                if os.environ.get("FIRESTORE_EMULATOR_HOST"):
                    raise StoreError(f"FIRESTORE_EMULATOR_HOST is set ({os.environ['FIRESTORE_EMULATOR_HOST']}): the "
                                     f"Firestore client would send the traffic of Cloud Firestore project {project} "
                                     f"to that emulator; unset it, or name the emulator in the store's URL "
                                     f"(http://HOST:PORT/PROJECT)")
                found = firestore.Client(project=project)
            self._clients[project] = found
        return found

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()


class FirestoreMarkerSink:
    """RPO markers as documents drill_markers/<seq, 12 digits> {seq, written_at (client epoch)}."""

    def __init__(self, server: FirestoreServer, project: str) -> None:
        self.server = server
        self.project = project

    def _collection(self) -> Any:
        return self.server.client(self.project).collection(MARKER_COLLECTION)

    def prepare(self) -> None:
        list(self._collection().limit(1).stream())  # fail now, not in the writer thread

    def write(self, marker: Marker) -> None:
        self._collection().document(f"{marker.seq:012d}").set({"seq": marker.seq, "written_at": marker.written_at})

    def newest(self) -> Marker | None:
        found = list(self._collection().order_by("seq", direction=firestore.Query.DESCENDING).limit(1).stream())
        if not found:
            return None
        data = found[0].to_dict() or {}
        return Marker(int(data["seq"]), float(data["written_at"]))

    def close(self) -> None:
        return None



# -- the store ---------------------------------------------------------------------------------------------


@dataclass
class FirestoreStore(Guarded):
    name: str
    config: StoreConfig
    server: FirestoreServer
    project: str
    kind: str = KIND.kind
    # Projects this store restored into on a server it does not own (live): emptied on close.
    scratch: list[str] = field(default_factory=list)

    def client(self) -> Client:
        """The google-cloud-firestore client of this store's database (for step plugins: setup, planted faults)."""
        return self.server.client(self.project)

    def describe(self) -> dict[str, str]:
        return {"kind": "firestore", "database": f"projects/{self.project}/databases/(default)",
                "location": self.server.description, "server_version": self.server.version,
                "tools": f"google-cloud-firestore {firestore.__version__}", "provision": self.config.provision}

    def _fail(self, action: str, exc: Exception) -> StoreError:
        return StoreError(f"{action} Firestore store {self.name!r} (project {self.project}, "
                          f"{self.server.description}) failed: {redact_text(str(exc))}")

    # -- reading everything -------------------------------------------------------------------------------

    def _top_collections(self, client: Client) -> list[str]:
        return sorted(c.id for c in client.collections())

    def _walk(self, client: Client, read_time: dt.datetime | None,
              names_only: bool = False) -> Iterator[Snapshot]:
        """Every document of the database (subcollections at any depth), streamed: gRPC flow control keeps
        only what is being read in memory. One query per top-level collection, not pages: the emulator
        scans the whole collection for each query (a first page of 1,000 out of 100,000 took 7 s), so
        pages would cost O(n^2). A stream cut by a transient error resumes after the last document read."""
        for collection in self._top_collections(client):
            query = client.collection(collection).recursive()
            if names_only:
                query = query.select([FieldPath.document_id()])
            last: Snapshot | None = None
            for attempt in range(1, 6):
                page = query if last is None else query.start_after(last)
                try:
                    for snapshot in page.stream(read_time=read_time) if read_time else page.stream():
                        last = snapshot
                        yield snapshot
                    break
                except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError,
                        gexc.Aborted):
                    if attempt == 5:
                        raise
                    time.sleep(0.5 * attempt)

    def _read_time(self) -> dt.datetime:
        """The server's "now" (the read time of a tiny aggregation): every page of a backup or a fingerprint
        reads the database as it was at this moment, after every write the server had acknowledged.
        The server's own clock, so a client clock ahead of it cannot ask for a moment in the future."""
        found: Any = self.client().collection(MARKER_COLLECTION).count().get()
        read_time = getattr(found[0][0], "read_time", None) if found and found[0] else None
        if isinstance(read_time, dt.datetime):
            return read_time
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    def _bulk_writer(self, client: Client) -> Any:
        """A BulkWriter; on an emulator without the 500/50/5 ramp-up (it protects real Firestore's new key ranges)."""
        if self.server.emulator_host is None:
            return client.bulk_writer()
        return client.bulk_writer(options=BulkWriterOptions(initial_ops_per_second=20_000,
                                                            max_ops_per_second=50_000))

    # -- data -----------------------------------------------------------------------------------------------

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        """Exactly `count` deterministic documents: users, products, users/*/sessions, users/*/sessions/*/events."""
        self.require_writes("seed")
        client = self.client()
        try:
            existing = [c for c in self._top_collections(client) if c in SEED_COLLECTIONS]
            if existing:
                raise StoreError(f"cannot seed {self.name!r}: project {self.project} already has collection(s) "
                                 f"{', '.join(existing)}; seed an empty database")
            writer = self._bulk_writer(client)
            failures: list[str] = []
            writer.on_write_error(lambda error, _w: _record_failure(failures, error))
            for written, (path, fields) in enumerate(seed_documents(count), start=1):
                writer.set(client.document(path), decode(fields, client.document))
                if written % FLUSH_EVERY == 0:
                    writer.flush()
                if written % 10_000 == 0:
                    progress(f"seeded {written}/{count} documents")
            writer.close()
            if failures:
                raise StoreError(f"seeding {self.name!r}: {len(failures)} writes failed, e.g. {failures[0]}")
            progress(f"seeded {count} documents into users, products, users/*/sessions, users/*/sessions/*/events")
        except gexc.GoogleAPIError as exc:
            raise self._fail("seeding", exc) from None

    def count(self, part: str | None = None) -> int:
        """Documents in the database (markers left out), or in one collection path (`users/*/sessions`)."""
        client = self.client()
        try:
            if part is not None and "*" not in part:
                segments = part.strip("/").split("/")
                if len(segments) % 2 == 0 or not all(segments):
                    raise StoreError(f"{part!r} is not a collection path of {self.name!r}: name a collection "
                                     f"(\"users\", \"users/u-000001/sessions\") or a pattern (\"users/*/sessions\")")
                if len(segments) == 1 and part not in self._top_collections(client):
                    raise StoreError(f"{self.name!r} has no collection {part!r}")
                found: Any = client.collection(*segments).count().get()  # documents directly in it
                return int(found[0][0].value)
            total = 0
            seen_part = part is None
            for snapshot in self._walk(client, None, names_only=True):
                path = snapshot.reference.path
                if path.split("/", 1)[0] == MARKER_COLLECTION:
                    continue
                if part is None or part_of(path) == part:
                    total += 1
                    seen_part = True
        except gexc.GoogleAPIError as exc:
            raise self._fail("counting", exc) from None
        if not seen_part:
            raise StoreError(f"{self.name!r} has no documents in collection {part!r} (name a collection path such "
                             f"as \"users\" or \"users/*/sessions\")")
        return total

    def count_matching(self, pattern: str) -> int:
        """Documents whose path matches the pattern (`users/*`, `users/*/sessions/*`; drill.name_patterns)."""
        try:
            return sum(1 for snapshot in self._walk(self.client(), None, names_only=True)
                       if snapshot.reference.path.split("/", 1)[0] != MARKER_COLLECTION
                       and name_patterns.matches(pattern, snapshot.reference.path))
        except gexc.GoogleAPIError as exc:
            raise self._fail("counting", exc) from None

    def plant_change(self) -> PlantedChange:
        """The self-test's fault: the first document gets one more field; its undo sets its fields back."""
        client = self.client()
        try:
            snapshot = next((s for s in self._walk(client, None)
                             if s.reference.path.split("/", 1)[0] != MARKER_COLLECTION), None)
            if snapshot is None:
                raise StoreError(f"the self-test found no document to change in {self.name!r}")
            original = snapshot.to_dict() or {}
            snapshot.reference.update({SELF_TEST_FIELD: True})
        except gexc.GoogleAPIError as exc:
            raise self._fail("changing a document of", exc) from None
        reference = snapshot.reference

        def undo() -> None:
            reference.set(original)

        return PlantedChange(part=part_of(reference.path), item=f"document {reference.path}", undo=undo)

    def fingerprint(self) -> Fingerprint:
        client = self.client()
        read_time = self._read_time()
        builder = FingerprintBuilder()
        try:
            for snapshot in self._walk(client, read_time):
                builder.add(snapshot.reference.path, encode(snapshot.to_dict() or {}))
        except gexc.GoogleAPIError as exc:
            raise self._fail("fingerprinting", exc) from None
        return builder.result(read_time)

    def explain_differences(self, artifact: BackupArtifact, parts: set[str], limit: int = 10) -> list[str]:
        """Which documents and fields make the named parts differ from the backup (differences.py)."""
        return differences.explain_differences(self, artifact, parts, limit)

    # -- backup, verify and restore (transfers.py) ------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        return Transfers(self).backup(directory, progress)

    def verify_backup(self, artifact: BackupArtifact) -> None:
        Transfers(self).verify_backup(artifact)

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        return Transfers(self).restore(artifact, into, progress)

    # -- disaster ----------------------------------------------------------------------------------------------

    def _delete_everything(self, client: Client) -> int:
        deleted = 0
        for collection in self._top_collections(client):
            deleted += int(client.recursive_delete(client.collection(collection)))
        return deleted

    def lose(self) -> None:
        """Recursive delete of every collection (subcollections included): the database is empty afterwards."""
        self.require_destructive("lose")
        try:
            self._delete_everything(self.client())
        except gexc.GoogleAPIError as exc:
            raise self._fail("deleting", exc) from None

    def own_restore_target(self, name: str) -> str | None:
        # A restore `into` a name goes into the project of that name made a project id (`my_app` -> `my-app`).
        return "project" if project_id(name) == self.project else None

    def restore_target_exists(self, name: str) -> bool:
        try:
            return bool(self._top_collections(self.server.client(project_id(name))))
        except gexc.GoogleAPIError as exc:
            raise self._fail("listing the restore target of", exc) from None

    def drop_restore_target(self, name: str) -> None:
        """Empty the project a restore into `name` filled (a drill killed before its clean-up left it)."""
        project = project_id(name)
        if project == self.project:
            raise StoreError(f"{name!r} is the store's own project, not a restore target")
        try:
            self._delete_everything(self.server.client(project))
        except gexc.GoogleAPIError as exc:
            raise self._fail("emptying the restore target of", exc) from None

    def markers(self) -> FirestoreMarkerSink:
        return FirestoreMarkerSink(self.server, self.project)

    def keep_target(self, name: str) -> None:
        if name in self.scratch:
            self.scratch.remove(name)

    def close(self) -> None:
        for project in self.scratch:
            with contextlib.suppress(gexc.GoogleAPIError):
                self._delete_everything(self.server.client(project))
        self.scratch.clear()
