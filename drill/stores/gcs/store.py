"""Google Cloud Storage: one store is one bucket, backed up object by object, never whole in memory.

Backups come in two formats, both described by a JSON Lines manifest (`manifest.jsonl`: a header
line, one line per object with its size, md5, crc32c, content type, cache/encoding headers, custom
metadata and generation, then a trailer line with the totals):
- `gcs-archive` (default): every object downloaded (raw bytes, pinned to the listed generation) into
  `<backup dir>/<backup id>/objects/NNNNN/NNNNNNNN`, one file per object;
- `gcs-bucket-copy` (`backup_bucket` in drill.toml, or the sentence `... is taken into the bucket
  "X"`): every object copied server-side (rewrite, so metadata, content type and hashes are kept)
  to `gs://<backup bucket>/<backup id>/<name>`; only the manifest is local.
The artifact's sha256 is the manifest's; the manifest holds every object's md5/crc32c, so
verify_backup proves the whole backup (each file re-hashed, or each copied object's server-side
hashes listed) before a restore touches anything.

Fingerprints are per top-level prefix ("models/", "config/", "(top level)"): an object count, the
bytes, and an order-independent hash over each object's name, size, md5, crc32c, content type,
cache/encoding headers and custom metadata (generations are not part of it: a restore makes new
ones). `explain_differences` names which objects differ and how by walking the backup's manifest
and the bucket's listing side by side (both in name order), in flat memory.

RPO markers are empty objects `.drill/markers/<seq>-<epoch>`; fingerprints and counts leave the
`.drill/` prefix out, backups keep it (so that the newest surviving marker can be read back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

from drill.config import StoreConfig
from drill.errors import StoreError
from drill.fingerprint import Fingerprint
from drill.stores.base import BackupArtifact, Guarded, Marker, Progress, Store, no_progress
from drill.stores.capabilities import PlantedChange
from drill.stores.gcs import KIND, GcsOptions, checks
from drill.stores.gcs.objects import (
    INTERNAL_PREFIX,
    MANIFEST,
    MARKER_PREFIX,
    TOP_LEVEL,
    GcsConnection,
    _describe_change,
    _entry,
    _fail,
    _FingerprintBuilder,
    _merge,
    _parallel,
    read_manifest,
    valid_bucket_name,
)
from drill.stores.gcs.seed import _seed_object
from drill.stores.gcs.transfers import Transfers

# -- markers ------------------------------------------------------------------------------------------------


class GcsMarkerSink:
    """RPO markers as empty objects `.drill/markers/<seq, 12 digits>-<client epoch>` (name order = seq order)."""

    def __init__(self, conn: GcsConnection, bucket: str) -> None:
        self.conn = conn
        self.bucket = bucket

    def prepare(self) -> None:
        self.conn.client().bucket(self.bucket).reload()

    def write(self, marker: Marker) -> None:
        blob = self.conn.client().bucket(self.bucket).blob(f"{MARKER_PREFIX}{marker.seq:012d}-{marker.written_at!r}")
        blob.upload_from_string(b"", content_type="application/octet-stream")

    def newest(self) -> Marker | None:
        last = None
        for blob in self.conn.client().list_blobs(self.bucket, prefix=MARKER_PREFIX):
            last = blob.name
        if last is None:
            return None
        seq, _, written_at = last[len(MARKER_PREFIX):].partition("-")
        return Marker(int(seq), float(written_at))

    def close(self) -> None:
        return None


# -- the store ----------------------------------------------------------------------------------------------


@dataclass
class GcsStore(Guarded):
    name: str
    config: StoreConfig
    conn: GcsConnection
    bucket: str
    backup_bucket: str | None = None
    kind: str = KIND.kind
    closers: list[Callable[[], object]] = field(default_factory=list)

    def describe(self) -> dict[str, str]:
        return {"kind": "gcs", "location": f"gs://{self.bucket} on {self.conn.description}",
                "bucket": self.bucket, "provision": self.config.provision,
                "backup": f"gs://{self.backup_bucket}" if self.backup_bucket else "local archive"}

    def use_backup_bucket(self, bucket: str) -> None:
        """Back up by server-side copy into `bucket` from now on (drill.toml: backup_bucket)."""
        if not valid_bucket_name(bucket):
            raise StoreError(f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '-', '_' or '.')")
        self.backup_bucket = bucket

    def _bucket(self, name: str | None = None) -> Any:
        return self.conn.client().bucket(name or self.bucket)

    def _list(self, prefix: str | None = None, bucket: str | None = None) -> Iterator[Any]:
        """Live objects in name order, page by page (drill's own `.drill/` objects included)."""
        try:
            yield from self.conn.client().list_blobs(bucket or self.bucket, prefix=prefix, page_size=1000)
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"listing gs://{bucket or self.bucket}", exc) from None

    def _list_versions(self, bucket: str | None = None) -> Iterator[Any]:
        # versions="true", not True: the client would send "True", which fake-gcs-server does not accept.
        try:
            yield from self.conn.client().list_blobs(bucket or self.bucket, versions="true", page_size=1000)
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"listing the object versions of gs://{bucket or self.bucket}", exc) from None

    def ensure_bucket(self, name: str | None = None, versioning: bool = True) -> bool:
        """Create the bucket if it does not exist (versioned by default); True when it was created."""
        bucket = self._bucket(name)
        try:
            if bucket.exists():
                return False
            bucket.versioning_enabled = versioning
            self.conn.client().create_bucket(bucket)
            return True
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"creating bucket gs://{name or self.bucket}", exc) from None

    # -- data ---------------------------------------------------------------------------------------------

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        """Exactly `count` deterministic, varied objects: product images, model files, exports, docs, configs."""
        self.require_writes("seed")
        first = _seed_object(0)[0]
        if self._bucket().get_blob(first) is not None:
            raise StoreError(f"cannot seed {self.name!r}: gs://{self.bucket} already holds seed objects (e.g. "
                             f"{first!r}); seed an empty bucket")

        def upload(i: int) -> None:
            name, data, content_type, metadata, headers = _seed_object(i)
            blob = self._bucket().blob(name)
            blob.metadata = metadata
            for attr, value in headers.items():
                setattr(blob, attr, value)
            blob.upload_from_string(data, content_type=content_type)

        try:
            for done, _ in _parallel(range(count), upload):
                if (done + 1) % 10_000 == 0 or done + 1 == count:
                    progress(f"seeded {done + 1}/{count} objects into gs://{self.bucket}")
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"seeding {self.name!r}", exc) from None

    def count(self, part: str | None = None) -> int:
        prefix = None
        if part is not None and part != TOP_LEVEL:
            prefix = part if part.endswith("/") else part + "/"
        total = 0
        for blob in self._list(prefix):
            if blob.name.startswith(INTERNAL_PREFIX) or (part == TOP_LEVEL and "/" in blob.name):
                continue
            total += 1
        return total

    def has_object(self, name: str) -> bool:
        try:
            return bool(self._bucket().blob(name).exists())
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"looking up gs://{self.bucket}/{name}", exc) from None

    def fingerprint(self) -> Fingerprint:
        builder = _FingerprintBuilder()
        for blob in self._list():
            builder.add(_entry(blob))
        return builder.build()

    def explain_differences(self, artifact: BackupArtifact, parts: set[str] | None = None,
                            limit: int = 20) -> list[str]:
        """Which objects differ from the backup and how (missing, unexpected, content, metadata, headers)."""
        if artifact.kind != "gcs" or not (artifact.path / MANIFEST).is_file():
            return []
        _, entries = read_manifest(artifact.path)
        expected = (e for e in entries if not e["name"].startswith(INTERNAL_PREFIX))
        actual = (_entry(b) for b in self._list() if not b.name.startswith(INTERNAL_PREFIX))
        out: list[str] = []
        extra = 0
        for before, after in _merge(expected, actual):
            if before is not None and after is not None:
                change = _describe_change(before, after)
                message = f"object {before['name']}: {change}" if change else ""
            elif before is not None:
                message = f"object {before['name']}: missing (it was {before['size']} bytes at the backup)"
            else:
                assert after is not None
                message = f"object {after['name']}: present now but not at the backup ({after['size']} bytes)"
            if message:
                if len(out) < limit:
                    out.append(message)
                else:
                    extra += 1
        if extra:
            out.append(f"... and {extra} more objects differ")
        return out

    # -- richer counts and the self-test (checks.py) ------------------------------------------------------------

    def count_matching(self, pattern: str) -> int:
        return checks.count_matching(self, pattern)

    def plant_change(self) -> PlantedChange:
        return checks.plant_change(self)

    # -- faults and setup (tests, plugins) ---------------------------------------------------------------------

    def put_object(self, name: str, data: bytes, content_type: str = "application/octet-stream",
                   metadata: dict[str, str] | None = None) -> None:
        self.require_writes("write an object into")
        blob = self._bucket().blob(name)
        blob.metadata = metadata
        blob.upload_from_string(data, content_type=content_type)

    def delete_object(self, name: str) -> None:
        self.require_writes("delete an object of")
        try:
            self._bucket().delete_blob(name)
        except gexc.NotFound:
            raise StoreError(f"gs://{self.bucket} has no object {name!r}") from None

    def set_metadata(self, name: str, metadata: dict[str, str]) -> None:
        self.require_writes("change the metadata of")
        blob = self._bucket().get_blob(name)
        if blob is None:
            raise StoreError(f"gs://{self.bucket} has no object {name!r}")
        blob.metadata = {**(blob.metadata or {}), **metadata}
        blob.patch()


    def _delete_live(self, name: str) -> None:
        with contextlib.suppress(gexc.NotFound):
            self._bucket().delete_blob(name)

    # -- backup and restore (transfers.py) --------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        return Transfers(self).backup(directory, progress)

    def verify_backup(self, artifact: BackupArtifact) -> None:
        Transfers(self).verify_backup(artifact)

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        return Transfers(self).restore(artifact, into, progress)

    def dated_copy(self, bucket: str, pattern: str, zone: str = "UTC") -> BackupArtifact:
        from drill.stores.gcs.dated_copies import found_dated_copy

        return found_dated_copy(self, bucket, pattern, zone)

    def versions_artifact(self, backup: BackupArtifact) -> BackupArtifact:
        return Transfers(self).versions_artifact(backup)

    def restore_to_time(self, when: float, into: str | None = None, progress: Progress = no_progress) -> GcsStore:
        return Transfers(self).restore_to_time(when, into, progress)

    # -- disaster and clean-up ------------------------------------------------------------------------------

    def lose(self) -> None:
        """Delete every object and every version. fake-gcs-server ignores deletes of noncurrent generations,
        so on an emulator the leftovers go with the bucket, which is made again (empty, same versioning)."""
        self.require_destructive("lose")
        bucket = self._bucket()
        bucket.reload()
        versioning = bool(bucket.versioning_enabled)

        def delete(blob: Any) -> None:
            with contextlib.suppress(gexc.NotFound):
                self._bucket().delete_blob(blob.name, generation=blob.generation)

        try:
            left, listed_before = None, -1
            for _round in range(3):  # a listing that pages by offset can skip entries while they are deleted
                listed = sum(1 for _ in _parallel(self._list_versions(), delete))
                left = next(iter(self._list_versions()), None)
                if left is None or listed == listed_before:  # gone, or the deletes do nothing (emulator)
                    break
                listed_before = listed
            if left is not None and self.conn.emulator:
                for _ in _parallel(self._list(), lambda b: self._delete_live(b.name)):
                    pass
                self._bucket().delete()
                self.ensure_bucket(versioning=versioning)
                left = next(iter(self._list_versions()), None)
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"deleting the objects of gs://{self.bucket}", exc) from None
        if left is not None:
            raise StoreError(f"gs://{self.bucket} still holds {left.name} (generation {left.generation}) after every "
                             f"object and version was deleted")

    def delete_bucket(self) -> None:
        """Empty the bucket (every version) and delete it: for buckets drill made itself."""
        saved = self.config
        self.config = replace(saved, destructive=True)
        try:
            self.lose()
            with contextlib.suppress(gexc.NotFound):
                self._bucket().delete()
        finally:
            self.config = saved

    def own_restore_target(self, name: str) -> str | None:
        return "bucket" if name == self.bucket else None

    def restore_target_exists(self, name: str) -> bool:
        try:
            return bool(self._bucket(name).exists())
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"looking for bucket gs://{name}", exc) from None

    def drop_restore_target(self, name: str) -> None:
        """Delete a bucket a restore into `name` made (a drill killed before its clean-up left it)."""
        if name == self.bucket or not valid_bucket_name(name):
            raise StoreError(f"{name!r} is not a restore target of {self.name!r}")
        options = replace(GcsOptions.of(self.config), bucket=name)
        GcsStore(name=name, config=replace(self.config, name=name, options=options), conn=self.conn,
                 bucket=name).delete_bucket()

    def markers(self) -> GcsMarkerSink:
        return GcsMarkerSink(self.conn, self.bucket)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


