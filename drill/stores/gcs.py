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

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from google.api_core import exceptions as gexc
from google.cloud import storage

from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.redact import redact_text
from drill.stores.base import BackupArtifact, Guarded, Marker, Progress, Store, no_progress, sha256_file

MARKER_PREFIX = ".drill/markers/"
INTERNAL_PREFIX = ".drill/"
MANIFEST = "manifest.jsonl"
MANIFEST_VERSION = 1
VERSIONS_FORMAT = "gcs-versions"
WORKERS = 8
TOP_LEVEL = "(top level)"
# The object attributes a backup keeps and a fingerprint covers, as (manifest key, Blob attribute).
ATTRIBUTES = (("size", "size"), ("md5", "md5_hash"), ("crc32c", "crc32c"), ("content_type", "content_type"),
              ("cache_control", "cache_control"), ("content_disposition", "content_disposition"),
              ("content_encoding", "content_encoding"), ("content_language", "content_language"),
              ("metadata", "metadata"))

T = TypeVar("T")
R = TypeVar("R")


# -- connection ---------------------------------------------------------------------------------------------


@dataclass
class GcsConnection:
    """Where the buckets live: Google's API (credentials from the environment) or an emulator endpoint."""

    project: str
    endpoint: str | None = None  # http(s)://host:port of an emulator; None: Google Cloud Storage itself
    description: str = ""
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def emulator(self) -> bool:
        return self.endpoint is not None

    def client(self) -> storage.Client:
        """One client per thread (backups and restores copy objects from several threads)."""
        client: storage.Client | None = getattr(self._local, "client", None)
        if client is None:
            if self.endpoint is not None:
                from google.auth import credentials

                anonymous: Any = cast(Any, credentials).AnonymousCredentials()
                client = storage.Client(project=self.project, credentials=anonymous,
                                        client_options={"api_endpoint": self.endpoint})
            else:
                client = storage.Client(project=self.project)  # Application Default Credentials
            self._local.client = client
        return client


def _fail(what: str, exc: Exception) -> StoreError:
    return StoreError(f"{what}: {redact_text(str(exc))}")


def _parallel(items: Iterable[T], work: Callable[[T], R], workers: int = WORKERS) -> Iterator[tuple[T, R]]:
    """(item, work(item)) in the order of `items`, at most 2*workers in flight: flat memory, any length."""
    pending: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drill-gcs") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(work, item)))
                if len(pending) >= 2 * workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()


# -- object records -----------------------------------------------------------------------------------------


def _entry(blob: Any) -> dict[str, Any]:
    """What a manifest says about one object (JSON-ready)."""
    out: dict[str, Any] = {"name": blob.name}
    for key, attr in ATTRIBUTES:
        value = getattr(blob, attr)
        if key == "size":
            value = int(value or 0)
        elif key == "metadata":
            value = dict(sorted((value or {}).items()))
        out[key] = value
    out["generation"] = int(blob.generation) if blob.generation is not None else None
    return out


def _digest(entry: dict[str, Any]) -> int:
    """64 bits of a blake2b over the object's name and attributes (not its generation)."""
    digest = hashlib.blake2b(digest_size=16)
    for piece in (entry["name"], *(json.dumps(entry.get(key), sort_keys=True, ensure_ascii=False)
                                   for key, _ in ATTRIBUTES)):
        data = piece.encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return int.from_bytes(digest.digest()[:8], "big")


def part_of(name: str) -> str:
    return name.split("/", 1)[0] + "/" if "/" in name else TOP_LEVEL


class _FingerprintBuilder:
    """Per-part count, bytes and a sum of 64-bit digests (order-independent; duplicates cannot cancel)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[int]] = {}  # part -> [count, bytes, digest sum]

    def add(self, entry: dict[str, Any]) -> None:
        if entry["name"].startswith(INTERNAL_PREFIX):
            return
        acc = self.parts.setdefault(part_of(entry["name"]), [0, 0, 0])
        acc[0] += 1
        acc[1] += int(entry["size"])
        acc[2] = (acc[2] + _digest(entry)) % 2**64

    def build(self) -> Fingerprint:
        parts = {name: PartPrint(count, hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32],
                                 {"bytes": str(size)})
                 for name, (count, size, total) in self.parts.items()}
        return Fingerprint(kind="gcs", part_label="prefix", unit="objects", parts=parts,
                           extras={"hashed": "name size md5 crc32c content-type headers metadata"},
                           taken_at=time.time())


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


def _crc32c_b64(path: Path) -> str:
    import google_crc32c

    checksum: Any = cast(Any, google_crc32c).Checksum()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode()


def _describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    changes = []
    if before["md5"] != after["md5"] or before["crc32c"] != after["crc32c"] or before["size"] != after["size"]:
        changes.append(f"content changed ({before['size']} bytes md5 {before['md5']} at the backup, "
                       f"{after['size']} bytes md5 {after['md5']} now)")
    was, now = before.get("metadata") or {}, after.get("metadata") or {}
    if was != now:
        keys = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
        listed = "; ".join(f"{k}: {was.get(k)!r} -> {now.get(k)!r}" for k in keys)
        changes.append(f"metadata changed ({listed})")
    for key, _ in ATTRIBUTES:
        if key not in ("size", "md5", "crc32c", "metadata") and before.get(key) != after.get(key):
            changes.append(f"{key.replace('_', '-')} changed ({before.get(key)!r} -> {after.get(key)!r})")
    return "; ".join(changes)


# -- manifests ----------------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and an iterator over the object lines; the iterator checks the trailer at the end."""
    path = directory / MANIFEST
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise BackupError(f"cannot read the backup manifest {path}: {exc}") from None
    first = handle.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        handle.close()
        raise BackupError(f"{path} is not a drill GCS backup manifest (line 1 is not JSON)") from None
    if not isinstance(header, dict) or header.get("drill_gcs_manifest") != MANIFEST_VERSION:
        handle.close()
        raise BackupError(f"{path} is not a drill GCS backup manifest (version {MANIFEST_VERSION})")

    def entries() -> Iterator[dict[str, Any]]:
        count = 0
        with handle:
            for number, line in enumerate(handle, start=2):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    raise BackupError(f"{path}:{number}: not JSON (the manifest is damaged)") from None
                if item.get("end"):
                    if item.get("objects") != count:
                        raise BackupError(f"{path}:{number}: the trailer says {item.get('objects')} objects, "
                                          f"the manifest lists {count}")
                    return
                count += 1
                yield item
        raise BackupError(f"{path}: no trailer line: the manifest is truncated (the backup did not finish)")

    return header, entries()


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
    kind: str = "gcs"
    closers: list[Callable[[], object]] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "objects"

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

    # -- backup ---------------------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        """Every live object into a local archive, or server-side into the backup bucket; streamed."""
        started = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{uuid.uuid4().hex[:6]}"
        final = directory / backup_id
        partial = directory / f".{backup_id}.partial"
        partial.mkdir(parents=True)
        into_bucket = self.backup_bucket
        if into_bucket is not None:
            if into_bucket == self.bucket:
                raise BackupError(f"the backup bucket of {self.name!r} is its own bucket gs://{self.bucket}: "
                                  f"name another bucket in backup_bucket")
            if self.conn.emulator and not self.config.is_live:
                self.ensure_bucket(into_bucket)
            elif not self._bucket(into_bucket).exists():
                raise BackupError(f"backup bucket gs://{into_bucket} of {self.name!r} does not exist; create it "
                                  f"first (drill does not create buckets in a live project)")
        builder = _FingerprintBuilder()
        count = size = 0
        try:
            with (partial / MANIFEST).open("w", encoding="utf-8") as manifest:
                header = {"drill_gcs_manifest": MANIFEST_VERSION, "id": backup_id, "store": self.name,
                          "bucket": self.bucket, "format": "gcs-bucket-copy" if into_bucket else "gcs-archive",
                          "backup_bucket": into_bucket, "prefix": f"{backup_id}/" if into_bucket else None,
                          "started_at": started}
                manifest.write(json.dumps(header, ensure_ascii=False) + "\n")
                numbered = ((n, _entry(blob)) for n, blob in enumerate(self._list()))
                work = self._copy_to_bucket(into_bucket, backup_id) if into_bucket else self._download(partial)
                for (_, entry), stored in _parallel(numbered, work):
                    entry.update(stored)
                    manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    builder.add(entry)
                    count, size = count + 1, size + int(entry["size"])
                    if count % 10_000 == 0:
                        progress(f"backed up {count} objects of gs://{self.bucket}")
                manifest.write(json.dumps({"end": True, "objects": count, "bytes": size}) + "\n")
            digest = sha256_file(partial / MANIFEST)
            os.replace(partial, final)  # only a finished backup gets a name that looks like one
        except gexc.GoogleAPICallError as exc:
            _remove_tree(partial)
            raise BackupError(f"backup of {self.name!r} failed: {redact_text(str(exc))}") from None
        except BaseException:
            _remove_tree(partial)
            raise
        where = f"gs://{into_bucket}/{backup_id}/" if into_bucket else str(final)
        progress(f"backed up {count} objects ({size} bytes) of gs://{self.bucket} to {where}")
        return BackupArtifact(
            id=backup_id, store=self.name, kind="gcs", format=str(header["format"]), path=final, sha256=digest,
            size=size, created_at=time.time(), consistent_at=started,
            tool_versions={"google-cloud-storage": storage.__version__}, server_version=self.conn.description,
            fingerprint=builder.build())

    def _download(self, root: Path) -> Callable[[tuple[int, dict[str, Any]]], dict[str, Any]]:
        def download(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            number, entry = item
            relative = f"objects/{number // 1000:05d}/{number:08d}"
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            blob = self._bucket().blob(entry["name"], generation=entry["generation"])
            blob.download_to_filename(str(target), raw_download=True)  # the stored bytes, never transcoded
            if target.stat().st_size != entry["size"]:
                raise BackupError(f"object {entry['name']} of gs://{self.bucket}: downloaded "
                                  f"{target.stat().st_size} bytes, listed as {entry['size']}")
            return {"file": relative}

        return download

    def _copy_to_bucket(self, into: str, backup_id: str) -> Callable[[tuple[int, dict[str, Any]]], dict[str, Any]]:
        def copy(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            _, entry = item
            source = self._bucket().blob(entry["name"], generation=entry["generation"])
            target = self._rewrite(source, into, f"{backup_id}/{entry['name']}")
            _check_copy(entry, target, f"gs://{into}/{backup_id}/{entry['name']}")
            return {"copy": target.name}

        return copy

    def _rewrite(self, source: Any, bucket: str, name: str) -> Any:
        """A server-side copy (rewrite, repeated until done): metadata, content type and hashes are kept."""
        target = self._bucket(bucket).blob(name)
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
        copies = (b for b in self._list(prefix, bucket))
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
                work = target._upload_from(artifact.path)
            else:
                work = target._copy_from(self, str(header["backup_bucket"]), str(header["prefix"]))
            for _ in _parallel(entries, work):
                restored += 1
            if into is None:
                removed = target._delete_extras(artifact.path)
                if removed:
                    progress(f"deleted {removed} objects of gs://{target.bucket} that the backup does not hold")
        except gexc.GoogleAPICallError as exc:
            raise StoreError(f"restoring {artifact.id} into gs://{target.bucket} failed after {restored} objects: "
                             f"{redact_text(str(exc))}") from None
        progress(f"restored {restored} objects of {artifact.id} into gs://{target.bucket}")
        return target

    def _target(self, into: str | None) -> GcsStore:
        if into is None:
            self.require_destructive("overwrite")
            return self
        if not valid_bucket_name(into):
            raise StoreError(f"cannot restore into {into!r}: not a valid bucket name (3-63 lowercase letters, digits, "
                             f"'-', '_' or '.'); name the target bucket so")
        target = GcsStore(name=into, config=replace(self.config, name=into, destructive=True, bucket=into),
                          conn=self.conn, bucket=into)
        if target.ensure_bucket():
            if self.config.is_live:  # a bucket drill made in a live project is removed afterwards
                target.closers.append(target.delete_bucket)
        elif next(iter(target._list()), None) is not None:
            raise StoreError(f"cannot restore into gs://{into}: the bucket exists and holds objects; restore into an "
                             f"empty or new bucket")
        return target

    def _upload_from(self, root: Path) -> Callable[[dict[str, Any]], None]:
        def upload(entry: dict[str, Any]) -> None:
            blob = self._bucket().blob(entry["name"])
            for key, attr in ATTRIBUTES:
                if key not in ("size", "md5", "crc32c", "content_type"):
                    setattr(blob, attr, entry.get(key) or None)
            blob.upload_from_filename(str(root / entry["file"]), content_type=entry["content_type"])
            _check_copy(entry, blob, f"gs://{self.bucket}/{entry['name']}")

        return upload

    def _copy_from(self, source: GcsStore, bucket: str, prefix: str) -> Callable[[dict[str, Any]], None]:
        def copy(entry: dict[str, Any]) -> None:
            copied = self._rewrite(source._bucket(bucket).blob(prefix + entry["name"]), self.bucket, entry["name"])
            _check_copy(entry, copied, f"gs://{self.bucket}/{entry['name']}")

        return copy

    def _delete_extras(self, root: Path) -> int:
        """Delete live objects the backup does not hold (walking manifest and listing side by side)."""
        _, entries = read_manifest(root)
        extras = (after["name"] for before, after in _merge(entries, (_entry(b) for b in self._list()))
                  if before is None and after is not None)
        return sum(1 for _ in _parallel(list(extras), self._delete_live))

    def _delete_live(self, name: str) -> None:
        with contextlib.suppress(gexc.NotFound):
            self._bucket().delete_blob(name)

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
        versioning = self._bucket()
        versioning.reload()
        if not versioning.versioning_enabled:
            raise StoreError(f"gs://{self.bucket} is not versioned: a point-in-time restore needs object versioning")
        target = self._target(into)
        at = dt.datetime.fromtimestamp(when, tz=dt.UTC)
        copied = deleted = 0

        def apply(group: tuple[str, Any, Any]) -> str:
            name, chosen, live = group
            if chosen is None:
                if into is None and live is not None:
                    self._delete_live(name)
                    return "deleted"
                return "kept"
            if into is None and live is not None and live.generation == chosen.generation:
                return "kept"
            source = self._bucket().blob(name, generation=chosen.generation)
            copied_blob = self._rewrite(source, target.bucket, name)
            _check_copy(_entry(chosen), copied_blob, f"gs://{target.bucket}/{name}")
            return "copied"

        try:
            for _, outcome in _parallel(_versions_at(self._list_versions(), at), apply):
                copied += outcome == "copied"
                deleted += outcome == "deleted"
        except gexc.GoogleAPICallError as exc:
            raise StoreError(f"point-in-time restore of {self.name!r} failed: {redact_text(str(exc))}") from None
        progress(f"restored gs://{self.bucket} to {at.isoformat()} into gs://{target.bucket}: {copied} objects "
                 f"copied from old generations, {deleted} deleted")
        return target

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

    def restore_target_exists(self, name: str) -> bool:
        try:
            return bool(self._bucket(name).exists())
        except gexc.GoogleAPICallError as exc:
            raise _fail(f"looking for bucket gs://{name}", exc) from None

    def drop_restore_target(self, name: str) -> None:
        """Delete a bucket a restore into `name` made (a drill killed before its clean-up left it)."""
        if name == self.bucket or not valid_bucket_name(name):
            raise StoreError(f"{name!r} is not a restore target of {self.name!r}")
        GcsStore(name=name, config=replace(self.config, name=name, bucket=name), conn=self.conn,
                 bucket=name).delete_bucket()

    def markers(self) -> GcsMarkerSink:
        return GcsMarkerSink(self.conn, self.bucket)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


# -- helpers ------------------------------------------------------------------------------------------------


def _merge(expected: Iterable[dict[str, Any]], actual: Iterable[dict[str, Any]]
           ) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Pairs (expected, actual) by name from two name-ordered streams; None where a side has no such name."""
    left, right = iter(expected), iter(actual)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a["name"] < b["name"]):
            yield a, None
            a = next(left, None)
        elif a is None or b["name"] < a["name"]:
            yield None, b
            b = next(right, None)
        else:
            yield a, b
            a, b = next(left, None), next(right, None)


def _versions_at(versions: Iterable[Any], at: dt.datetime) -> Iterator[tuple[str, Any, Any]]:
    """(name, the version live at `at` or None, the live version now or None), one per name (listed together)."""
    name: str | None = None
    chosen = live = None
    for blob in versions:
        if blob.name != name:
            if name is not None:
                yield name, chosen, live
            name, chosen, live = blob.name, None, None
        created, gone = blob.time_created, blob.time_deleted
        if gone is None:
            live = blob
        if created is not None and created <= at and (gone is None or gone > at):
            chosen = blob
    if name is not None:
        yield name, chosen, live


def _check_copy(entry: dict[str, Any], blob: Any, where: str) -> None:
    for key, attr in (("size", "size"), ("md5", "md5_hash"), ("crc32c", "crc32c")):
        now = int(getattr(blob, attr) or 0) if key == "size" else getattr(blob, attr)
        if entry.get(key) is not None and now is not None and now != entry[key]:
            raise StoreError(f"{where}: {key} {now} after the copy, {entry[key]} at the source")


def _check_file(root: Path, entry: dict[str, Any]) -> None:
    path = root / str(entry.get("file"))
    name = entry["name"]
    if not path.is_file():
        raise BackupError(f"the archive {root} lacks the file of object {name!r} ({entry.get('file')})")
    if path.stat().st_size != entry["size"]:
        raise BackupError(f"the archive {root} is corrupt: object {name!r} has {path.stat().st_size} bytes "
                          f"in {entry['file']}, the manifest says {entry['size']}")
    if entry.get("md5"):
        found = _md5_b64(path)
        if found != entry["md5"]:
            raise BackupError(f"the archive {root} is corrupt: object {name!r} ({entry['file']}) has md5 {found}, "
                              f"the manifest says {entry['md5']}")
    elif entry.get("crc32c"):
        found = _crc32c_b64(path)
        if found != entry["crc32c"]:
            raise BackupError(f"the archive {root} is corrupt: object {name!r} ({entry['file']}) has crc32c "
                              f"{found}, the manifest says {entry['crc32c']}")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def valid_bucket_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]", name) is not None


# -- seed data ----------------------------------------------------------------------------------------------

_PEOPLE = ("Zoë", "José", "Łukasz", "Ångström", "Søren", "Nguyễn", "Μαρία", "Дмитрий", "李雷", "محمد")
_FRAMES = ("aviator", "wayfarer", "round", "cat-eye", "rimless", "browline", "oval", "square")
_LANGS = ("en", "de", "fr", "ja", "pt-BR")


def _seed_object(i: int) -> tuple[str, bytes, str, dict[str, str], dict[str, str]]:
    """(name, bytes, content type, metadata, headers) of seed object i: the runbook's asset/model/data mix."""
    rng = random.Random(i)
    person = _PEOPLE[i % len(_PEOPLE)]
    frame = _FRAMES[i % len(_FRAMES)]
    size = 64 + (i * 7919) % 1400
    if i == 0:  # the runbook's critical files (GCS_CRITICAL_FILES)
        return ("models/face-analysis-v2.0/model.pb", b"\x08\x01\x12\x0bface-v2.0" + rng.randbytes(48_000),
                "application/octet-stream", {"framework": "tensorflow", "version": "2.0", "critical": "true"}, {})
    if i == 1:
        config = {"environment": "production", "model": "models/face-analysis-v2.0/model.pb",
                  "regions": ["us-central1", "europe-west4"], "owner": person}
        return ("config/production.json", json.dumps(config, ensure_ascii=False, indent=2).encode(),
                "application/json", {"critical": "true"}, {"cache_control": "no-cache"})
    kind = i % 10
    sku = f"SKU-{i * 37 % 100_000:05d}"
    if kind <= 3:
        view = ("front", "side", "top", "worn")[kind]
        body = b"\xff\xd8\xff\xe0\x00\x10JFIF" + rng.randbytes(size * (16 if i % 25 == 0 else 1))
        return (f"images/products/{frame}/{sku}/{view}-{i}.jpg", body, "image/jpeg",
                {"sku": sku, "uploaded-by": person, "view": view}, {"cache_control": "public, max-age=86400"})
    if kind == 4:
        return (f"images/thumbnails/{sku}-{i}-256.webp", b"RIFF" + rng.randbytes(size // 2) + b"WEBP", "image/webp",
                {"sku": sku}, {"cache_control": "public, max-age=604800"})
    if kind == 5:
        return (f"models/frame-fit-v{i % 3 + 1}.{i % 7}/checkpoint-{i:06d}.bin", rng.randbytes(size * 2),
                "application/octet-stream", {"framework": "pytorch", "val-accuracy": f"{0.8 + (i % 200) / 1000:.3f}"},
                {})
    if kind == 6:
        lines = ["session_id,user,frame,duration_s"] + [
            f"{i}-{j},{_PEOPLE[(i + j) % len(_PEOPLE)]},{_FRAMES[j % len(_FRAMES)]},{(i * j) % 600}"
            for j in range(size // 40 + 1)]
        return (f"data/exports/2025-03-{i % 28 + 1:02d}/sessions {i:06d}.csv", "\n".join(lines).encode(),
                "text/csv; charset=utf-8", {"exported-by": "nightly-export", "rows": str(len(lines) - 1)},
                {"content_disposition": f'attachment; filename="sessions-{i}.csv"'})
    if kind == 7:
        events = [{"event": "try-on", "user": person, "frame": frame, "n": j} for j in range(size // 60 + 1)]
        return (f"data/events/2025/{i % 12 + 1:02d}/events-{i:06d}.json",
                json.dumps(events, ensure_ascii=False).encode(), "application/json", {"schema": "v3"}, {})
    if kind == 8:
        lang = _LANGS[(i // 10) % len(_LANGS)]
        text = f"# Anpassung für {person} — {frame}\n\n" + "Brillengläser, café, 日本語 ✓\n" * (size // 40 + 1)
        return (f"docs/{lang}/fitting-guide-zürich-{i}.md", text.encode(), "text/markdown; charset=utf-8",
                {"author": person}, {"content_language": lang.split("-")[0]})
    return (f"config/stores/store-{i:06d}.yaml", f"store: {i}\nmanager: {person}\nframes: [{frame}]\n".encode(),
            "application/yaml", {}, {})
