"""Peak memory of a GCS fingerprint: N seed objects on a real fake-gcs-server, fingerprinted in a fresh process.

    .venv/bin/python bench/gcs_fingerprint_rss.py [--objects 100000] [--root DIR]

Uploading 100,000 objects through the API takes fake-gcs-server tens of minutes (its memory backend
slows down as a bucket grows), so the bucket is written straight into the layout of its filesystem
backend (one file per object, its attributes in the `user.metadata` xattr), which the server then
serves. The fingerprint runs in a child process that reports its own peak RSS (ru_maxrss), next to
the RSS of a child that only imports drill and connects.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import google_crc32c

from drill.provision.processes import free_port
from drill.stores.gcs.local import fake_gcs_server_binary
from drill.stores.gcs.seed import _seed_object

CHILD = """
import resource, sys, time
from drill.config import StoreConfig
from drill.stores.gcs.objects import GcsConnection
from drill.stores.gcs.store import GcsStore
endpoint, bucket, mode = sys.argv[1:4]
store = GcsStore(name=bucket, config=StoreConfig(name=bucket, kind="gcs"),
                 conn=GcsConnection(project="bench", endpoint=endpoint), bucket=bucket)
store._bucket().exists()
started = time.monotonic()
total = store.fingerprint().total if mode == "fingerprint" else 0
print(total, round(time.monotonic() - started, 1), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def write_bucket(root: Path, bucket: str, count: int) -> None:
    (root / f"{bucket}.bucketMetadata").write_text('{"DefaultEventBasedHold":false,"VersioningEnabled":false}')
    for i in range(count):
        name, data, content_type, metadata, headers = _seed_object(i)
        data = data[:200]  # the fingerprint reads attributes, not content: keep the disk use small
        path = root / bucket / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        crc = base64.b64encode(google_crc32c.Checksum(data).digest()).decode()  # type: ignore[no-untyped-call]
        attributes = {
            "StorageClass": "STANDARD", "ContentType": content_type, "ContentEncoding": "",
            "ContentDisposition": headers.get("content_disposition", ""),
            "ContentLanguage": headers.get("content_language", ""), "CacheControl": headers.get("cache_control", ""),
            "Crc32c": crc, "Md5Hash": md5, "Etag": md5, "ACL": [], "Metadata": metadata,
            "Created": "2026-01-01T00:00:00Z", "Deleted": "0001-01-01T00:00:00Z", "Updated": "2026-01-01T00:00:00Z",
            "CustomTime": "0001-01-01T00:00:00Z", "Generation": 1767225600000000 + i, "RetentionMode": "",
            "RetentionRetainUntil": ""}
        os.setxattr(path, "user.metadata", json.dumps(attributes).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--root", type=Path, default=None, help="where to write the bucket (needs user xattrs)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drill-bench-gcs-", dir=args.root))
    started = time.monotonic()
    write_bucket(root, "bench", args.objects)
    print(f"wrote {args.objects} objects in {time.monotonic() - started:.0f}s under {root}", flush=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([fake_gcs_server_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                               "-backend", "filesystem", "-filesystem-root", str(root), "-external-url", endpoint,
                               "-log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        for mode in ("connect-only", "fingerprint"):
            done = subprocess.run([sys.executable, "-c", CHILD, endpoint, "bench", mode], capture_output=True,
                                  text=True, check=True)
            total, seconds, peak = done.stdout.split()
            print(f"{mode}: {total} objects, {seconds}s, peak RSS {peak} MB", flush=True)
    finally:
        server.kill()
        server.wait()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
