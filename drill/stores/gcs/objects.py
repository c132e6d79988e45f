"""GCS objects, listings and backup manifests: the connection, the attributes a backup keeps and a
fingerprint covers, parallel transfers, the manifest format and the checks of a copied object or file."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from google.cloud import storage

from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.redact import redact_text
from drill.stores.gcs import KIND

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
        return KIND.fingerprint(parts, extras={"hashed": "name size md5 crc32c content-type headers metadata"},
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
