"""Backups and restores of one Firestore store: every document as JSON lines (read at one read time), checked
before a restore; or, for real projects with `export_uri`, the Admin API's managed export and import."""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from drill import found_backups
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Progress,
    Store,
    check_backup_file,
    no_progress,
    require_new_restore_target,
    sha256_file,
)
from drill.stores.firestore import FirestoreOptions
from drill.stores.firestore.codec import (
    FORMAT,
    VERSION,
    FingerprintBuilder,
    decode,
    encode,
    read_backup,
    rfc3339,
)
from drill.stores.firestore.common import FLUSH_EVERY, MANAGED_FORMAT, _record_failure, _valid_project_id, project_id

# The Google client libraries are only partly typed: their objects are handled as Any here.
Client = Any
Snapshot = Any
_ANONYMOUS: Any = AnonymousCredentials



if TYPE_CHECKING:
    from drill.stores.firestore.store import FirestoreStore


class Transfers:
    def __init__(self, store: FirestoreStore) -> None:
        self.store = store

    # -- backup -----------------------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        store = self.store
        if store.config.is_live and FirestoreOptions.of(store.config).export_uri and store.server.emulator_host is None:
            return ManagedExport(self.store).export(directory, progress)
        created = time.time()
        backup_id = f"{self.store.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{backup_id}.firestore.jsonl.gz"
        partial = directory / f".{final.name}.partial"
        client = self.store.client()
        read_time = self.store._read_time()
        builder = FingerprintBuilder()
        documents = 0
        try:
            with gzip.open(partial, "wt", encoding="utf-8", compresslevel=6) as out:
                out.write(json.dumps({"format": FORMAT, "version": VERSION, "project": self.store.project,
                                      "database": "(default)", "read_time": rfc3339(read_time),
                                      "created_at": created}) + "\n")
                for snapshot in self.store._walk(client, read_time):
                    path = snapshot.reference.path
                    fields = encode(snapshot.to_dict() or {})
                    out.write(json.dumps({"path": path, "fields": fields}, ensure_ascii=False,
                                         allow_nan=False) + "\n")
                    builder.add(path, fields)
                    documents += 1
                    if documents % 10_000 == 0:
                        progress(f"backed up {documents} documents of {self.store.name}")
                fingerprint = builder.result(read_time)
                out.write(json.dumps({"end": {"documents": documents, "fingerprint": fingerprint.to_dict()}}) + "\n")
            digest = sha256_file(partial)
            os.replace(partial, final)  # only a complete file gets a name that looks like a backup
        except gexc.GoogleAPIError as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"backup of {self.store.name!r} failed: {redact_text(str(exc))}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        progress(f"backed up {documents} documents of project {self.store.project} at {rfc3339(read_time)} to {final}")
        return BackupArtifact(
            id=backup_id, store=self.store.name, kind="firestore", format=FORMAT, path=final, sha256=digest,
            size=final.stat().st_size, created_at=time.time(), consistent_at=read_time.timestamp(),
            tool_versions={"google-cloud-firestore": firestore.__version__}, server_version=self.store.server.version,
            fingerprint=fingerprint)

    # -- verify and restore -----------------------------------------------------------------------------------

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """sha256, then every line decoded and the whole file's fingerprint recomputed, before anything is touched."""
        if found_backups.is_found(artifact):  # an export folder made outside drill: as found, every record whole
            found_backups.check_found(artifact)
            return
        if artifact.format == MANAGED_FORMAT:
            ManagedExport(self.store).verify(artifact)
            return
        path = check_backup_file(artifact)
        _, documents, trailer = read_backup(path)
        builder = FingerprintBuilder()
        count = 0
        for doc_path, fields in documents:
            try:
                decode(fields, lambda p: p)
            except (ValueError, TypeError) as exc:
                raise BackupError(f"{path}: document {doc_path} does not decode: {exc}") from None
            builder.add(doc_path, fields)
            count += 1
        end = trailer()
        if end.get("documents") != count:
            raise BackupError(f"{path}: the end record says {end.get('documents')} documents, the file holds {count}")
        recorded = end.get("fingerprint")
        if not isinstance(recorded, dict) or Fingerprint.from_dict(recorded).parts != builder.result().parts:
            raise BackupError(f"{path}: the documents do not match the fingerprint recorded in the backup's end "
                              f"record (the file was altered)")

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        if into is not None:
            require_new_restore_target(self.store, into)  # `into` its own project would empty it with no safety copy
        self.verify_backup(artifact)  # before the target is touched
        target_project = project_id(into) if into else self.store.project
        if target_project == self.store.project:
            target = self.store
        else:
            if self.store.server.emulator_host is None and not _valid_project_id(target_project):
                raise StoreError(f"cannot restore {self.store.name!r} into {into!r}: a restore into another name goes "
                                 f"into the project of that name, and {into!r} is not a valid project id; name an "
                                 f"existing, empty project "
                                 f"(`restored from its latest backup into \"my-project-restore\"`)")
            options = replace(FirestoreOptions.of(self.store.config), project=target_project)
            config = replace(self.store.config, name=into or self.store.name, destructive=True, options=options)
            from drill.stores.firestore.store import FirestoreStore  # the store module imports this one

            target = FirestoreStore(name=into or self.store.name, config=config, server=self.store.server,
                                    project=target_project)
        client = target.client()
        try:
            existing = self.store._top_collections(client)
        except gexc.GoogleAPIError as exc:
            raise self.store._fail("listing the restore target of", exc) from None
        if existing:
            if target is self.store:
                self.store.require_destructive("overwrite")
            elif self.store.config.is_live:
                raise StoreError(f"restore target project {target_project!r} already holds collections "
                                 f"({', '.join(existing[:5])}); drill never overwrites a project it did not empty "
                                 f"itself: name an empty one")
            progress(f"emptying project {target_project} before the restore")
            target._delete_everything(client)
        if target is not self.store and self.store.config.is_live:
            self.store.scratch.append(target_project)
        if artifact.format == MANAGED_FORMAT:
            ManagedExport(self.store).import_into(artifact, target_project, progress)
            return target
        if found_backups.is_found(artifact):
            from drill.stores.firestore.exports import import_export

            import_export(artifact, target, progress)
            return target
        Transfers(target)._write_backup(artifact.path, progress)
        return target

    def _write_backup(self, path: Path, progress: Progress) -> None:
        client = self.store.client()
        _, documents, _ = read_backup(path)
        writer = self.store._bulk_writer(client)
        failures: list[str] = []
        writer.on_write_error(lambda error, _w: _record_failure(failures, error))
        written = 0
        try:
            for doc_path, fields in documents:
                writer.set(client.document(doc_path), decode(fields, client.document))
                written += 1
                if written % FLUSH_EVERY == 0:
                    writer.flush()
                    if failures:
                        break
                if written % 10_000 == 0:
                    progress(f"restored {written} documents into {self.store.project}")
            writer.close()
        except gexc.GoogleAPIError as exc:
            raise self.store._fail("restoring into", exc) from None
        if failures:
            raise StoreError(f"restoring into {self.store.name!r}: {len(failures)} document writes failed, e.g. "
                             f"{failures[0]}")
        progress(f"restored {written} documents into project {self.store.project} with a bulk writer")


# -- managed export and import (real projects) -------------------------------------------------------------


class ManagedExport:
    """The Firestore Admin API's managed export/import to Cloud Storage, for live stores with `export_uri`.

    The artifact is a small local manifest (`<id>.firestore-export.json`) naming the export's
    `output_uri_prefix`; the export itself stays in the bucket. The export is asked for at the same
    `snapshot_time` the fingerprint reads at, so the two describe one state. NOT run in this
    repository's tests: the emulator has no Admin API (see docs/compatibility.md).
    """

    def __init__(self, store: FirestoreStore) -> None:
        self.store = store

    def _admin(self) -> Any:
        from google.cloud import firestore_admin_v1  # imported here: only live managed exports need it

        return firestore_admin_v1.FirestoreAdminClient()

    def export(self, directory: Path, progress: Progress) -> BackupArtifact:
        store = self.store
        export_uri = FirestoreOptions.of(store.config).export_uri
        assert export_uri is not None
        created = time.time()
        backup_id = f"{store.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        read_time = store._read_time().replace(second=0, microsecond=0)  # snapshot_time: a whole minute
        fingerprint = FingerprintBuilder()
        try:
            for snapshot in store._walk(store.client(), read_time):
                fingerprint.add(snapshot.reference.path, encode(snapshot.to_dict() or {}))
            prefix = f"{export_uri.rstrip('/')}/{backup_id}"
            progress(f"managed export of project {store.project} to {prefix}")
            operation = self._admin().export_documents(request={
                "name": f"projects/{store.project}/databases/(default)", "output_uri_prefix": prefix,
                "snapshot_time": read_time})
            response = operation.result(timeout=24 * 3600)
        except gexc.GoogleAPIError as exc:
            raise BackupError(f"managed export of {store.name!r} failed: {redact_text(str(exc))}") from None
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / f"{backup_id}.firestore-export.json"
        result = fingerprint.result(read_time)
        manifest.write_text(json.dumps({"format": MANAGED_FORMAT, "project": store.project,
                                        "output_uri_prefix": response.output_uri_prefix,
                                        "snapshot_time": rfc3339(read_time),
                                        "fingerprint": result.to_dict()}, indent=2), encoding="utf-8")
        return BackupArtifact(
            id=backup_id, store=store.name, kind="firestore", format=MANAGED_FORMAT, path=manifest,
            sha256=sha256_file(manifest), size=manifest.stat().st_size, created_at=time.time(),
            consistent_at=read_time.timestamp(), tool_versions={"firestore-admin": "v1"},
            server_version="Cloud Firestore", fingerprint=result)

    def verify(self, artifact: BackupArtifact) -> None:
        if not artifact.path.is_file():
            raise BackupError(f"backup {artifact.id} of {artifact.store!r}: manifest {artifact.path} is missing")
        if artifact.sha256 is not None and sha256_file(artifact.path) != artifact.sha256:
            raise BackupError(f"backup {artifact.id} of {artifact.store!r}: manifest {artifact.path} was altered")
        data = json.loads(artifact.path.read_text(encoding="utf-8"))
        if not str(data.get("output_uri_prefix", "")).startswith("gs://"):
            raise BackupError(f"backup {artifact.id}: manifest {artifact.path} names no gs:// export")

    def import_into(self, artifact: BackupArtifact, project: str, progress: Progress) -> None:
        prefix = json.loads(artifact.path.read_text(encoding="utf-8"))["output_uri_prefix"]
        progress(f"managed import of {prefix} into project {project}")
        try:
            operation = self._admin().import_documents(request={
                "name": f"projects/{project}/databases/(default)", "input_uri_prefix": prefix})
            operation.result(timeout=24 * 3600)
        except gexc.GoogleAPIError as exc:
            raise StoreError(f"managed import into {project!r} failed: {redact_text(str(exc))}") from None
