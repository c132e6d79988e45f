"""Backups production made of a bucket: a dated copy under a backup bucket (the developer guide's gcs_backup.sh).

    gs://eyewearml-backups/models/2025-03-25/<every object of gs://models>

`the latest backup of "models" in the bucket "eyewearml-backups" under "models/*/"` lists the
prefixes of the backup bucket that the pattern matches (`*` and `?` within one level, level by
level, never the whole bucket), takes the newest by the date in its name (else by its newest
object), and writes a manifest of that copy like drill's own bucket copies: a header naming the
backup bucket and the prefix, one line per object (name, size, md5, crc32c, content type, headers,
metadata), a trailer. Its sha256 is the backup's, its listing the fingerprint that "matches its
state at the backup" compares with. Before a restore the copy is listed again and every object's
size and hashes compared with the manifest (drill.stores.gcs.transfers); the restore copies each
object server-side into the target bucket.
"""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import storage

from drill import backup_dates, safe_paths
from drill.errors import BackupError
from drill.stores.base import BackupArtifact, sha256_file
from drill.stores.gcs.objects import MANIFEST, MANIFEST_VERSION, _entry, _FingerprintBuilder, _remove_tree

if TYPE_CHECKING:
    from drill.stores.gcs.store import GcsStore

FORMAT = "gcs-dated-copy"


def _children(store: GcsStore, bucket: str, prefix: str) -> list[str]:
    """The `folder/` prefixes one level under `prefix` in a bucket."""
    try:
        pages = store.conn.client().list_blobs(bucket, prefix=prefix, delimiter="/", page_size=1000)
        for _ in pages:
            pass  # the prefixes are known once every page is read
        return sorted(pages.prefixes)
    except gexc.NotFound:
        raise BackupError(f"the backup bucket gs://{bucket} does not exist") from None
    except gexc.GoogleAPICallError as exc:
        raise BackupError(f"listing gs://{bucket}/{prefix} failed: {exc}") from None


def matching_prefixes(store: GcsStore, bucket: str, pattern: str) -> list[str]:
    """The prefixes (`models/2025-03-25/`) of a bucket that a pattern such as `models/*/` matches."""
    levels = [level for level in pattern.strip("/").split("/") if level]
    found = [""]
    for level in levels:
        found = [child for parent in found for child in _children(store, bucket, parent)
                 if fnmatch.fnmatchcase(child[len(parent):].rstrip("/"), level)]
    return found


def _newest(store: GcsStore, bucket: str, prefixes: list[str], zone: str) -> tuple[str, float]:
    dated = []
    for prefix in prefixes:
        name = prefix.rstrip("/").rsplit("/", 1)[-1]
        from_name = backup_dates.name_date(name, zone)  # one dating rule for every found backup
        if from_name is not None:
            when = from_name
        else:  # no date in its name: its newest object's time (a bucket's mtime)
            times = [b.updated.timestamp() for b in store._list(prefix, bucket) if b.updated is not None]
            when = max(times, default=0.0)
        dated.append((when, prefix))
    when, prefix = max(dated)
    return prefix, when


def found_dated_copy(store: GcsStore, bucket: str, pattern: str, zone: str = "UTC") -> BackupArtifact:
    """The newest dated copy of `store`'s bucket under `pattern` in `bucket` (dates in names read in `zone`), with a
    manifest drill wrote of it."""
    if not pattern.endswith("/"):
        raise BackupError(f"{pattern!r} must end in '/': a dated copy is a folder of the backup bucket")
    prefixes = matching_prefixes(store, bucket, pattern)
    if not prefixes:
        raise BackupError(f"no copy of {store.name!r} in gs://{bucket} matches {pattern!r}")
    prefix, when = _newest(store, bucket, prefixes, zone)
    work = safe_paths.private_temp("drill-gcs-copy-")
    store.closers.append(lambda: _remove_tree(work))
    root = work / "manifest"
    root.mkdir()
    builder = _FingerprintBuilder()
    count = size = 0
    with (root / MANIFEST).open("w", encoding="utf-8") as manifest:
        manifest.write(json.dumps({"drill_gcs_manifest": MANIFEST_VERSION, "id": f"gs://{bucket}/{prefix}",
                                   "store": store.name, "bucket": store.bucket, "format": "gcs-bucket-copy",
                                   "backup_bucket": bucket, "prefix": prefix, "started_at": when}) + "\n")
        for blob in store._list(prefix, bucket):
            entry: dict[str, Any] = {**_entry(blob), "name": blob.name[len(prefix):]}
            entry["copy"] = blob.name
            manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
            builder.add(entry)
            count, size = count + 1, size + int(entry["size"])
        manifest.write(json.dumps({"end": True, "objects": count, "bytes": size}) + "\n")
    if not count:
        raise BackupError(f"the copy gs://{bucket}/{prefix} of {store.name!r} holds no object")
    return BackupArtifact(
        id=f"gs://{bucket}/{prefix}", store=store.name, kind="gcs", format=FORMAT, path=root,
        sha256=sha256_file(root / MANIFEST), size=size, created_at=when, consistent_at=when,
        tool_versions={"google-cloud-storage": storage.__version__}, server_version=store.conn.description,
        fingerprint=builder.build(), source="external")

