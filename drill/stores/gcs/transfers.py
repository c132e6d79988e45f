"""Backups and restores of one GCS store: archives and bucket copies with their manifest, checked before a
restore; restores into the bucket or a new one; point-in-time restores from object versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import storage

from drill.errors import BackupError, StoreError
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Progress,
    Store,
    no_progress,
    require_new_restore_target,
    sha256_file,
)
from drill.stores.gcs import GcsOptions
from drill.stores.gcs.objects import (
    ATTRIBUTES,
    MANIFEST,
    MANIFEST_VERSION,
    VERSIONS_FORMAT,
    _check_copy,
    _check_file,
    _entry,
    _FingerprintBuilder,
    _merge,
    _parallel,
    _remove_tree,
    _versions_at,
    read_manifest,
    valid_bucket_name,
)

if TYPE_CHECKING:
    from drill.stores.gcs.store import GcsStore


class Transfers:
    def __init__(self, store: GcsStore) -> None:
        self.store = store
    # -- backup ---------------------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        """Every live object into a local archive, or server-side into the backup bucket; streamed."""
        started = time.time()
        backup_id = f"{self.store.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{uuid.uuid4().hex[:6]}"
        final = directory / backup_id
        partial = directory / f".{backup_id}.partial"
        partial.mkdir(parents=True)
        into_bucket = self.store.backup_bucket
        if into_bucket is not None:
            if into_bucket == self.store.bucket:
                raise BackupError(f"the backup bucket of {self.store.name!r} is its own bucket "
                                  f"gs://{self.store.bucket}: name another bucket in backup_bucket")
            if self.store.conn.emulator and not self.store.config.is_live:
                self.store.ensure_bucket(into_bucket)
            elif not self.store._bucket(into_bucket).exists():
                raise BackupError(f"backup bucket gs://{into_bucket} of {self.store.name!r} does not exist; create it "
                                  f"first (drill does not create buckets in a live project)")
        builder = _FingerprintBuilder()
        count = size = 0
        try:
            with (partial / MANIFEST).open("w", encoding="utf-8") as manifest:
                header = {"drill_gcs_manifest": MANIFEST_VERSION, "id": backup_id, "store": self.store.name,
                          "bucket": self.store.bucket, "format": "gcs-bucket-copy" if into_bucket else "gcs-archive",
                          "backup_bucket": into_bucket, "prefix": f"{backup_id}/" if into_bucket else None,
                          "started_at": started}
                manifest.write(json.dumps(header, ensure_ascii=False) + "\n")
                numbered = ((n, _entry(blob)) for n, blob in enumerate(self.store._list()))
                work = self._copy_to_bucket(into_bucket, backup_id) if into_bucket else self._download(partial)
                for (_, entry), stored in _parallel(numbered, work):
                    entry.update(stored)
                    manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    builder.add(entry)
                    count, size = count + 1, size + int(entry["size"])
                    if count % 10_000 == 0:
                        progress(f"backed up {count} objects of gs://{self.store.bucket}")
                manifest.write(json.dumps({"end": True, "objects": count, "bytes": size}) + "\n")
            digest = sha256_file(partial / MANIFEST)
            os.replace(partial, final)  # only a finished backup gets a name that looks like one
        except gexc.GoogleAPICallError as exc:
            _remove_tree(partial)
            raise BackupError(f"backup of {self.store.name!r} failed: {redact_text(str(exc))}") from None
        except BaseException:
            _remove_tree(partial)
            raise
        where = f"gs://{into_bucket}/{backup_id}/" if into_bucket else str(final)
        progress(f"backed up {count} objects ({size} bytes) of gs://{self.store.bucket} to {where}")
        return BackupArtifact(
            id=backup_id, store=self.store.name, kind="gcs", format=str(header["format"]), path=final, sha256=digest,
            size=size, created_at=time.time(), consistent_at=started,
            tool_versions={"google-cloud-storage": storage.__version__}, server_version=self.store.conn.description,
            fingerprint=builder.build())

    def _download(self, root: Path) -> Callable[[tuple[int, dict[str, Any]]], dict[str, Any]]:
        def download(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            number, entry = item
            relative = f"objects/{number // 1000:05d}/{number:08d}"
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            blob = self.store._bucket().blob(entry["name"], generation=entry["generation"])
            blob.download_to_filename(str(target), raw_download=True)  # the stored bytes, never transcoded
            if target.stat().st_size != entry["size"]:
                raise BackupError(f"object {entry['name']} of gs://{self.store.bucket}: downloaded "
                                  f"{target.stat().st_size} bytes, listed as {entry['size']}")
            return {"file": relative}

        return download

    def _copy_to_bucket(self, into: str, backup_id: str) -> Callable[[tuple[int, dict[str, Any]]], dict[str, Any]]:
        def copy(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            _, entry = item
            source = self.store._bucket().blob(entry["name"], generation=entry["generation"])
            target = self._rewrite(source, into, f"{backup_id}/{entry['name']}")
            _check_copy(entry, target, f"gs://{into}/{backup_id}/{entry['name']}")
            return {"copy": target.name}

        return copy

    def _rewrite(self, source: Any, bucket: str, name: str) -> Any:
        """A server-side copy (rewrite, repeated until done): metadata, content type and hashes are kept."""
        target = self.store._bucket(bucket).blob(name)
        token, _, _ = target.rewrite(source)
        while token is not None:
            token, _, _ = target.rewrite(source, token=token)
        return target

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """The manifest's sha256, then every object: re-hashed files, or the copies' server-side hashes."""
        root = artifact.path
        if not root.is_dir() or not (root / MANIFEST).is_file():
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing or has no {MANIFEST}: {root}")
        if artifact.sha256 is not None:
            digest = sha256_file(root / MANIFEST)
            if digest != artifact.sha256:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: the sha256 of its manifest "
                                  f"{digest} does not match {artifact.sha256} recorded when it was taken ({root})")
        header, entries = read_manifest(root)
        if header["format"] == "gcs-archive":
            for entry in entries:
                _check_file(root, entry)
            return
        bucket, prefix = str(header["backup_bucket"]), str(header["prefix"])
        copies = (b for b in self.store._list(prefix, bucket))
        for before, after in _merge(entries, ({**_entry(b), "name": b.name[len(prefix):]} for b in copies)):
            if before is None:
                continue  # an object added to the backup folder later is not part of this backup
            where = f"gs://{bucket}/{prefix}{before['name']}"
            if after is None:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} is incomplete: {where} is missing")
            for key in ("size", "md5", "crc32c"):
                if before[key] != after[key]:
                    raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: {where} has {key} "
                                      f"{after[key]}, the manifest says {before[key]}")

    # -- restore --------------------------------------------------------------------------------------------

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        """Make the bucket (or the bucket `into`) hold exactly what the backup holds.

        An artifact of format `gcs-versions` (see `versions_artifact`) is a point-in-time restore from
        object generations to the artifact's consistent time instead."""
        if artifact.format == VERSIONS_FORMAT:
            return self.restore_to_time(artifact.consistent_at, into, progress)
        self.verify_backup(artifact)  # before the target is touched
        target = self._target(into)
        header, entries = read_manifest(artifact.path)
        restored = 0
        try:
            if header["format"] == "gcs-archive":
                work = Transfers(target)._upload_from(artifact.path)
            else:
                work = Transfers(target)._copy_from(self.store, str(header["backup_bucket"]), str(header["prefix"]))
            for _ in _parallel(entries, work):
                restored += 1
            if into is None:
                removed = Transfers(target)._delete_extras(artifact.path)
                if removed:
                    progress(f"deleted {removed} objects of gs://{target.bucket} that the backup does not hold")
        except gexc.GoogleAPICallError as exc:
            raise StoreError(f"restoring {artifact.id} into gs://{target.bucket} failed after {restored} objects: "
                             f"{redact_text(str(exc))}") from None
        progress(f"restored {restored} objects of {artifact.id} into gs://{target.bucket}")
        return target

    def _target(self, into: str | None) -> GcsStore:
        if into is None:
            self.store.require_destructive("overwrite")
            return self.store
        require_new_restore_target(self.store, into)  # `into` its own bucket is an in-place restore without its guards
        if not valid_bucket_name(into):
            raise StoreError(f"cannot restore into {into!r}: not a valid bucket name (3-63 lowercase letters, digits, "
                             f"'-', '_' or '.'); name the target bucket so")
        from drill.stores.gcs.store import GcsStore  # the store module imports this one

        target = GcsStore(name=into, config=replace(self.store.config, name=into, destructive=True,
                                                  options=replace(GcsOptions.of(self.store.config), bucket=into)),
                          conn=self.store.conn, bucket=into)
        if target.ensure_bucket():
            if self.store.config.is_live:  # a bucket drill made in a live project is removed afterwards
                target.closers.append(target.delete_bucket)
        elif next(iter(target._list()), None) is not None:
            raise StoreError(f"cannot restore into gs://{into}: the bucket exists and holds objects; restore into an "
                             f"empty or new bucket")
        return target

    def _upload_from(self, root: Path) -> Callable[[dict[str, Any]], None]:
        def upload(entry: dict[str, Any]) -> None:
            blob = self.store._bucket().blob(entry["name"])
            for key, attr in ATTRIBUTES:
                if key not in ("size", "md5", "crc32c", "content_type"):
                    setattr(blob, attr, entry.get(key) or None)
            blob.upload_from_filename(str(root / entry["file"]), content_type=entry["content_type"])
            _check_copy(entry, blob, f"gs://{self.store.bucket}/{entry['name']}")

        return upload

    def _copy_from(self, source: GcsStore, bucket: str, prefix: str) -> Callable[[dict[str, Any]], None]:
        def copy(entry: dict[str, Any]) -> None:
            blob = source._bucket(bucket).blob(prefix + entry["name"])
            copied = self._rewrite(blob, self.store.bucket, entry["name"])
            _check_copy(entry, copied, f"gs://{self.store.bucket}/{entry['name']}")

        return copy

    def _delete_extras(self, root: Path) -> int:
        """Delete live objects the backup does not hold (walking manifest and listing side by side)."""
        _, entries = read_manifest(root)
        extras = (after["name"] for before, after in _merge(entries, (_entry(b) for b in self.store._list()))
                  if before is None and after is not None)
        return sum(1 for _ in _parallel(list(extras), self.store._delete_live))

    def versions_artifact(self, backup: BackupArtifact) -> BackupArtifact:
        """A restore source that means "this bucket's object versions as they were when `backup` was taken";
        it keeps the backup's fingerprint (and manifest, for naming differences)."""
        return replace(backup, id=f"{backup.id}@versions", format=VERSIONS_FORMAT, source="object-versions")

    def restore_to_time(self, when: float, into: str | None = None, progress: Progress = no_progress) -> GcsStore:
        """Point-in-time restore from object generations (a versioned bucket): every object as it was at `when`.

        A version was live at `when` if it was created at or before it and became noncurrent (timeDeleted)
        after it. In place, objects that did not exist then are deleted and the others are brought back by
        a server-side copy of the old generation; into another bucket, only the copies are made.
        """
        versioning = self.store._bucket()
        versioning.reload()
        if not versioning.versioning_enabled:
            raise StoreError(f"gs://{self.store.bucket} is not versioned: a point-in-time restore needs object "
                             f"versioning")
        target = self._target(into)
        at = dt.datetime.fromtimestamp(when, tz=dt.UTC)
        copied = deleted = 0

        def apply(group: tuple[str, Any, Any]) -> str:
            name, chosen, live = group
            if chosen is None:
                if into is None and live is not None:
                    self.store._delete_live(name)
                    return "deleted"
                return "kept"
            if into is None and live is not None and live.generation == chosen.generation:
                return "kept"
            source = self.store._bucket().blob(name, generation=chosen.generation)
            copied_blob = self._rewrite(source, target.bucket, name)
            _check_copy(_entry(chosen), copied_blob, f"gs://{target.bucket}/{name}")
            return "copied"

        try:
            for _, outcome in _parallel(_versions_at(self.store._list_versions(), at), apply):
                copied += outcome == "copied"
                deleted += outcome == "deleted"
        except gexc.GoogleAPICallError as exc:
            raise StoreError(f"point-in-time restore of {self.store.name!r} failed: {redact_text(str(exc))}") from None
        progress(f"restored gs://{self.store.bucket} to {at.isoformat()} into gs://{target.bucket}: {copied} objects "
                 f"copied from old generations, {deleted} deleted")
        return target
