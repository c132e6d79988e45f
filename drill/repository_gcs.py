"""The backup repository in a GCS bucket prefix (`[repository] path = "gs://bucket/prefix"`).

Same layout as a local repository, as objects: `<prefix>/<store>/<backup id>/<file>`, then
`manifest.json`, then `verified.json`. GCS has no rename, so completeness is the manifest: the
backup's files are uploaded first (each upload is atomic, and refuses to replace an existing
object), the manifest last; a backup without a manifest is invisible to every listing, and is
removed by the next run (under the store's lock) once it is an hour old, so a run in progress
elsewhere is not disturbed. Deletion removes the manifest first. Verification and restores
download the files and check them exactly as for a local repository.

The lock is the local machine's (fcntl, under `[drill] backup_dir/.locks`): it keeps two runs on
this machine apart, not runs on two machines. Needs `pip install 'dr-drill[repository-gcs]'`;
credentials as google-cloud-storage finds them (STORAGE_EMULATOR_HOST for an emulator).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from drill import safe_paths
from drill.errors import BackupError, ConfigError
from drill.lock import store_lock
from drill.redact import redact_text
from drill.repository import MANIFEST, VERIFIED, Entry, Manifest, Repository

ORPHAN_AGE = 3600.0  # seconds: files without a manifest younger than this may belong to a run in progress


def _client() -> Any:
    try:
        import google.cloud.storage as storage
    except ImportError:
        raise ConfigError("a gs:// repository needs the Python package 'google-cloud-storage': "
                          "pip install 'dr-drill[repository-gcs]'") from None
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "drill"),
                              credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


class GcsRepository(Repository):
    def __init__(self, url: str, local_dir: Path) -> None:
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        self.url = url.rstrip("/")
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.lock_dir = local_dir / ".locks"
        work = safe_paths.private_temp("drill-gcs-repo-")  # decrypted copies may land here: swept after a kill
        atexit.register(shutil.rmtree, work, True)
        super().__init__(work)
        self.bucket = _client().bucket(bucket)

    @property
    def location(self) -> str:
        return self.url

    def lock(self, store: str, action: str) -> contextlib.AbstractContextManager[Path]:
        prefix = hashlib.sha256(self.prefix.encode()).hexdigest()[:12]  # any prefix, one plain lock name
        return store_lock(self.lock_dir, f"gcs-{self.bucket.name}-{prefix}-{safe_paths.store_name(store)}", action)

    def _name(self, store: str, backup_id: str, file: str) -> str:
        return f"{self.prefix}{store}/{backup_id}/{file}"

    def _blobs(self, store: str | None = None) -> list[Any]:
        try:
            under = f"{self.prefix}{store}/" if store else self.prefix
            return list(self.bucket.client.list_blobs(self.bucket, prefix=under))
        except Exception as exc:  # google.api_core errors, transport errors
            raise BackupError(f"cannot list {self.url}: {redact_text(str(exc))}") from None

    # -- read -------------------------------------------------------------------------------------------

    def stores(self) -> list[str]:
        found = set()
        for blob in self._blobs():
            parts = blob.name[len(self.prefix):].split("/")
            if len(parts) == 3 and parts[2] == MANIFEST:
                found.add(parts[0])
        return sorted(found)

    def entries(self, store: str | None = None) -> list[Entry]:
        blobs = self._blobs(store)
        names = {b.name for b in blobs}
        found: list[Entry] = []
        for blob in blobs:
            parts = blob.name[len(self.prefix):].split("/")
            if len(parts) != 3 or parts[2] != MANIFEST:
                continue
            where = f"gs://{self.bucket.name}/{blob.name}"
            try:  # object names are data: plain names before they become local paths
                name, backup_id = safe_paths.store_name(parts[0]), safe_paths.backup_id(parts[1])
                data = json.loads(blob.download_as_bytes())
                manifest = Manifest.from_dict(data)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BackupError(f"unreadable manifest {where}: {exc}") from None
            except BackupError as exc:
                raise BackupError(f"refusing the manifest {where}: {exc}") from None
            local = safe_paths.inside(self.root, name, backup_id)
            local.mkdir(mode=0o700, parents=True, exist_ok=True)
            safe_paths.write_json(local / MANIFEST, data)
            verified = self._name(name, backup_id, VERIFIED)
            if verified in names:
                with contextlib.suppress(Exception):
                    safe_paths.write_json(local / VERIFIED, json.loads(self.bucket.blob(verified).download_as_bytes()))
            found.append(Entry(manifest, local))
        return sorted(found, key=lambda e: (e.manifest.created_at, e.id))

    def _fetch(self, entry: Entry) -> None:
        for item in entry.manifest.files:
            local = safe_paths.inside(entry.directory, safe_paths.file_name(item.name))
            if local.is_file() and local.stat().st_size == item.size:
                continue
            blob = self.bucket.blob(self._name(entry.manifest.store, entry.id, item.name))
            try:
                blob.download_to_filename(str(local))
            except Exception as exc:
                local.unlink(missing_ok=True)
                if "404" in str(exc) or type(exc).__name__ == "NotFound":
                    continue  # reported as missing by the checks that follow
                raise BackupError(f"cannot download {item.name} of backup {entry.id} from {self.url}: "
                                  f"{redact_text(str(exc))}") from None

    # -- write ------------------------------------------------------------------------------------------

    def _publish(self, entry: Entry) -> None:
        """Upload the files, then the manifest; on any failure remove what was uploaded."""
        store, uploaded = entry.manifest.store, []
        try:
            for item in entry.manifest.files:
                blob = self.bucket.blob(self._name(store, entry.id, item.name))
                blob.upload_from_filename(str(entry.directory / item.name), if_generation_match=0,
                                          checksum="crc32c")
                uploaded.append(blob)
            manifest = self.bucket.blob(self._name(store, entry.id, MANIFEST))
            manifest.upload_from_filename(str(entry.directory / MANIFEST), if_generation_match=0,
                                          content_type="application/json")
        except Exception as exc:
            for blob in uploaded:
                with contextlib.suppress(Exception):
                    blob.delete()
            shutil.rmtree(entry.directory, ignore_errors=True)
            raise BackupError(f"uploading backup {entry.id} to {self.url} failed: {redact_text(str(exc))}") from None
        for item in entry.manifest.files:  # read back from GCS when verified, not from this copy
            (entry.directory / item.name).unlink(missing_ok=True)

    def _record(self, entry: Entry, status: str, message: str) -> None:
        super()._record(entry, status, message)
        with contextlib.suppress(Exception):
            self.bucket.blob(self._name(entry.manifest.store, entry.id, VERIFIED)).upload_from_filename(
                str(entry.directory / VERIFIED), content_type="application/json")

    def delete(self, entry: Entry) -> None:
        store = entry.manifest.store
        self.bucket.blob(self._name(store, entry.id, MANIFEST)).delete()  # invisible from here on
        for blob in self._blobs(f"{store}/{entry.id}"):
            with contextlib.suppress(Exception):
                blob.delete()
        shutil.rmtree(entry.directory, ignore_errors=True)

    def sweep_partials(self, store: str) -> list[Path]:
        removed = super().sweep_partials(store)
        by_id: dict[str, list[Any]] = {}
        for blob in self._blobs(store):
            parts = blob.name[len(self.prefix):].split("/")
            if len(parts) == 3:
                by_id.setdefault(parts[1], []).append(blob)
        now = time.time()
        for backup_id, blobs in by_id.items():
            if any(b.name.endswith(f"/{MANIFEST}") for b in blobs):
                continue
            if all(b.updated is not None and now - b.updated.timestamp() > ORPHAN_AGE for b in blobs):
                for blob in blobs:
                    with contextlib.suppress(Exception):
                        blob.delete()
                removed.append(Path(f"{store}/{backup_id}"))
        return removed
