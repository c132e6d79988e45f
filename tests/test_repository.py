"""The backup repository through the CLI against real servers: PostgreSQL and Redis backed up and
restored (test mode, into a new target, in place), manifests, atomic writes, verification."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.config import StoreConfig
from drill.provision.local_redis import LocalRedisServer, redis_server_binary, redis_server_version
from drill.repository import Repository
from drill.stores.base import sha256_file
from drill.stores.redis import RedisServer, RedisStore
from tests.backup_support import PASSWORD, ProdDb, pg_cluster, prod_db, write_config
from tests.conftest import drill_env, run_drill
from tests.live_servers import secrets_in, secrets_in_files

__all__ = ["pg_cluster", "prod_db"]


def _env(prod: ProdDb) -> dict[str, str]:
    return {"USERDB_URL": prod.url}


def test_postgres_backup_and_restore_through_the_repository(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir)
    before = prod_db.state()
    done = run_drill(drill_dir, "backup", "userdb", env=_env(prod_db))
    assert done.code == 0, done.output
    assert done.stdout == "" and done.stderr == ""  # quiet on success: cron mails nothing

    [entry] = Repository(drill_dir / "repo").entries("userdb")
    manifest = json.loads((entry.directory / "manifest.json").read_text())
    assert manifest["store"] == "userdb" and manifest["kind"] == "postgres"
    assert manifest["format"] == "pg_dump-custom" and manifest["encryption"] is None
    assert manifest["consistent_at"] <= manifest["created_at"] and manifest["created"].endswith("+00:00")
    [item] = manifest["files"]
    assert item["sha256"] == sha256_file(entry.directory / item["name"]) == item["plain_sha256"]
    assert manifest["size"] == item["size"] == (entry.directory / item["name"]).stat().st_size
    assert manifest["tool_versions"]["pg_dump"] and manifest["server_version"].startswith("1")
    assert manifest["drill_version"] and manifest["fingerprint"]["parts"]
    assert entry.verified  # verified right after it was written
    assert secrets_in_files(drill_dir, PASSWORD) == {}  # every byte of the repository, backups included

    listed = run_drill(drill_dir, "backups", "list", "--json")
    assert listed.code == 0 and json.loads(listed.stdout)[0]["id"] == entry.id
    assert run_drill(drill_dir, "backups", "verify").code == 0

    # Production changes after the backup.
    prod_db.execute("DELETE FROM orders WHERE id % 2 = 0")
    changed = prod_db.state()
    assert changed != before

    test = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod_db))
    assert test.code == 0, test.output
    assert f"restored userdb from {entry.id} into a throwaway local store (test mode)" in test.stdout
    assert "matching the fingerprint taken with the backup" in test.stdout
    assert prod_db.state() == changed  # production untouched

    databases = prod_db.databases()
    copy = run_drill(drill_dir, "restore", "userdb", "--from", entry.id, "--into", "userdb_copy", env=_env(prod_db))
    assert copy.code == 0, copy.output
    assert prod_db.databases() == databases | {"userdb_copy"}  # kept after the run: the operator asked for it
    assert prod_db.state("userdb_copy") == before
    assert prod_db.state() == changed

    refused = run_drill(drill_dir, "restore", "userdb", env=_env(prod_db))
    assert refused.code == 2
    assert "refusing to restore over store 'userdb'" in refused.stderr
    assert "destructive = true" in refused.stderr and "--overwrite" in refused.stderr
    assert prod_db.state() == changed

    over = run_drill(drill_dir, "restore", "userdb", "--overwrite", "-v", env=_env(prod_db))
    assert over.code == 0, over.output
    assert prod_db.state() == before
    assert prod_db.rows() == sum(count for count, _ in before["tables"].values())
    assert secrets_in(over.output, PASSWORD) == [] and secrets_in_files(drill_dir, PASSWORD) == {}
    log = (drill_dir / "repo" / "drill-backup.log").read_text().splitlines()
    assert [line.split()[2] for line in log] == ["backup", "verify", "restore", "restore", "restore", "restore"]
    assert [line.split()[4] for line in log] == ["ok", "ok", "ok", "ok", "refused", "ok"]


@pytest.fixture
def redis_prod() -> Iterator[LocalRedisServer]:
    binary = redis_server_binary()
    server = LocalRedisServer(binary, version=redis_server_version(binary))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _redis_store(server: LocalRedisServer) -> RedisStore:
    return RedisStore(name="cache", config=StoreConfig(name="cache", kind="redis"),
                      server=RedisServer(host="127.0.0.1", port=server.port, local=None))


def test_redis_backup_and_restore_through_the_repository(drill_dir: Path, redis_prod: LocalRedisServer) -> None:
    (drill_dir / "drill.toml").write_text('[repository]\npath = "repo"\nkey_file = "k.key"\n\n[stores.cache]\n'
                                          'kind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\n')
    (drill_dir / "k.key").write_bytes(bytes(range(32)))
    env = {"CACHE_URL": f"redis://127.0.0.1:{redis_prod.port}/0"}
    store = _redis_store(redis_prod)
    store.seed(400)
    before = store.fingerprint()
    done = run_drill(drill_dir, "backup", "cache", env=env)
    assert done.code == 0, done.output
    [entry] = Repository(drill_dir / "repo").entries("cache")
    assert entry.manifest.format == "redis-rdb" and entry.manifest.files[0].name.endswith(".rdb.age")
    assert entry.manifest.encryption and entry.manifest.encryption["algorithm"] == "age"
    assert entry.manifest.mac and entry.manifest.mac["algorithm"] == "HMAC-SHA256"

    client = redis_prod.client()
    client.flushall()
    client.set("after-backup", "1")
    client.close()
    changed = store.fingerprint()

    test = run_drill(drill_dir, "restore", "cache", "--test-mode", env=env)
    assert test.code == 0, test.output
    assert "400 keys, matching the fingerprint taken with the backup" in test.stdout
    assert store.fingerprint().parts == changed.parts

    into = run_drill(drill_dir, "restore", "cache", "--into", "cache2", env=env)
    assert into.code == 1 and "only restores a live Redis store in place" in into.stderr

    over = run_drill(drill_dir, "restore", "cache", "--overwrite", env=env)
    assert over.code == 0, over.output
    assert store.fingerprint().parts == before.parts
    assert store.count() == 400


CRASH = '''
import os, sys
from drill import cli
real_rename = os.rename
def crash(src, dst, *a, **k):
    if ".partial-" in str(src):
        os._exit(9)  # the process dies between writing everything and the rename
    return real_rename(src, dst, *a, **k)
os.rename = crash
sys.exit(cli.main(["backup", "userdb"]))
'''


def test_a_crash_in_the_middle_of_a_backup_leaves_nothing_that_looks_like_a_backup(
        drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir)
    crashed = subprocess.run([sys.executable, "-c", CRASH], cwd=drill_dir, env=drill_env(_env(prod_db)),
                             capture_output=True, text=True, timeout=300)
    assert crashed.returncode == 9, crashed.stderr
    partial = list((drill_dir / "repo" / "userdb").glob(".partial-*"))
    assert len(partial) == 1 and (partial[0] / "manifest.json").is_file()  # all written, but not renamed
    assert Repository(drill_dir / "repo").entries() == []
    listed = run_drill(drill_dir, "backups", "list")
    assert listed.code == 0 and "no backups" in listed.stdout
    with pytest.raises(Exception, match="no backup of 'userdb'"):
        Repository(drill_dir / "repo").get("userdb", "latest")
    refused = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod_db))
    assert refused.code == 1 and "no backup of 'userdb' in the repository" in refused.stderr

    again = run_drill(drill_dir, "backup", "userdb", "-v", env=_env(prod_db))
    assert again.code == 0, again.output
    assert "left by an interrupted run" in again.stdout
    assert not list((drill_dir / "repo" / "userdb").glob(".partial-*"))
    assert len(Repository(drill_dir / "repo").entries()) == 1


def test_verify_finds_a_flipped_byte_and_restore_refuses_it(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, destructive=True)
    assert run_drill(drill_dir, "backup", "userdb", env=_env(prod_db)).code == 0
    [entry] = Repository(drill_dir / "repo").entries()
    data = entry.directory / entry.manifest.files[0].name
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    data.write_bytes(bytes(blob))
    verify = run_drill(drill_dir, "backups", "verify")
    assert verify.code == 1
    assert f"FAILED  userdb {entry.id}" in verify.stdout and "is corrupt: sha256" in verify.stdout
    listed = run_drill(drill_dir, "backups", "list", "--json")
    assert json.loads(listed.stdout)[0]["verified"] == "failed"
    before, databases = prod_db.state(), prod_db.databases()
    restore = run_drill(drill_dir, "restore", "userdb", env=_env(prod_db))  # destructive: would overwrite
    assert restore.code == 1 and "is corrupt: sha256" in restore.stderr
    assert prod_db.state() == before and prod_db.databases() == databases
    shutil.rmtree(entry.directory)


DRILL_FEATURE = '''Feature: production's backups restore
  Scenario: the latest backup production made restores and matches
    Given the PostgreSQL store "userdb"
    And the latest backup of "userdb" in the repository
    When "userdb" is restored from its latest backup into "{copy}"
    Then "{copy}" matches the state of "userdb" at the backup
'''


def test_a_drill_restores_the_latest_encrypted_repository_backup(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    (drill_dir / "backup.key").write_bytes(bytes(range(1, 33)))
    assert run_drill(drill_dir, "backup", "userdb", env=_env(prod_db)).code == 0
    copy = f"{prod_db.database}_drill"
    (drill_dir / "features").mkdir()
    (drill_dir / "features" / "prod.feature").write_text(DRILL_FEATURE.format(copy=copy))
    done = run_drill(drill_dir, "run", env=_env(prod_db))
    assert done.code == 0, done.output
    [scenario] = done.results["scenarios"] if done.results else []
    assert scenario["status"] == "passed"
    assert "fetch" in [p["name"] for p in scenario["phases"]]
    [backup] = scenario["evidence"]["backups"]
    assert backup["source"] == "repository" and backup["encryption"]["algorithm"] == "age"
    assert scenario["evidence"]["fingerprints"][copy]["differences"] == []
    assert copy not in prod_db.databases()  # drill's copy is dropped after the drill

    # Planted fault: one flipped byte in the stored backup fails the drill at that step, by name.
    [entry] = Repository(drill_dir / "repo").entries()
    stored = entry.directory / entry.manifest.files[0].name
    blob = bytearray(stored.read_bytes())
    blob[-5] ^= 0x01
    stored.write_bytes(bytes(blob))
    failed = run_drill(drill_dir, "run", env=_env(prod_db))
    assert failed.code == 1
    [scenario] = failed.results["scenarios"] if failed.results else []
    assert scenario["status"] in ("failed", "error")
    assert any("is corrupt: sha256" in (e.get("message") or "") for e in scenario["errors"]), scenario["errors"]


def test_mongodb_directory_backups_are_packed_checked_and_restored(drill_dir: Path) -> None:
    from drill.errors import ProvisionError
    from drill.provision.local_mongodb import LocalMongoServer
    from drill.stores.mongodb import MongoServer, MongoStore

    local = LocalMongoServer()
    try:
        local.start()
    except ProvisionError as exc:
        pytest.fail(f"no MongoDB server could start: {exc}")
    try:
        mongo = MongoServer(uri=local.uri, description="prod stand-in")
        store = MongoStore(name="notifydb", config=StoreConfig(name="notifydb", kind="mongodb"), server=mongo,
                           database_name="notifydb")
        store.seed(200)
        before = store.fingerprint()
        (drill_dir / "drill.toml").write_text('[repository]\npath = "repo"\nkey_file = "k.key"\n\n[stores.notifydb]\n'
                                              'kind = "mongodb"\nprovision = "live"\nurl_env = "NOTIFY_URL"\n')
        (drill_dir / "k.key").write_bytes(bytes(range(32)))
        env = {"NOTIFY_URL": f"{local.uri.rstrip('/')}/notifydb"}
        done = run_drill(drill_dir, "backup", "notifydb", env=env)
        assert done.code == 0, done.output
        [entry] = Repository(drill_dir / "repo").entries()
        assert entry.manifest.packed == "tar" and entry.manifest.files[0].name.endswith(".tar.age")
        assert entry.manifest.contents and all(len(c["sha256"]) == 64 for c in entry.manifest.contents)
        test = run_drill(drill_dir, "restore", "notifydb", "--test-mode", env=env)
        assert test.code == 0, test.output
        assert "200 documents, matching the fingerprint taken with the backup" in test.stdout
        store.database().drop_collection(store.database().list_collection_names()[0])
        over = run_drill(drill_dir, "restore", "notifydb", "--overwrite", env=env)
        assert over.code == 0, over.output
        assert store.fingerprint().parts == before.parts
        mongo.close()
    finally:
        local.stop()
