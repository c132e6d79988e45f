"""The nightly suite (features/nightly_*.feature) on backups made the way production makes them.

Each test starts its own server outside drill, fills it, makes the runbook's backups with the native
tools (tests/runbook_fixtures.py), puts them where the feature's globs look, and runs the repository's
own nightly feature with `drill run`. It then holds drill to oracles of its own: the data the server
held (counted by psql, redis-cli, pymongo, the google clients), and each backup's sha256 as coreutils'
sha256sum computes it, which must be in results.json, in the HTML report and in the JUnit properties.
"""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# Imported here, not first inside a test: pytester (the drill_dir fixture) removes the modules a test imported
# when it ends, and a client library imported again next to its half-removed dependencies (http.cookiejar under
# requests) breaks the next test's client.
import google.cloud.firestore
import google.cloud.storage  # noqa: F401
import pymongo  # noqa: F401
import redis  # noqa: F401

from tests.conftest import REPO, DrillRun, run_drill
from tests.live_servers import LiveFirestore, LiveMongo, LivePostgres, LiveRedis
from tests.runbook_fixtures import (
    archive_wal,
    certificate,
    firestore_export,
    folder_sha256,
    mongodump_archive,
    mongodump_folder,
    pg_base_backup_tar_gz,
    pg_dump_gz,
    redis_aof_folder,
    redis_cli,
    redis_rdb,
    seed_notifications,
    sha256sum,
    stamp,
    switch_wal,
    tar_gz,
)

DAY = 86400
# The nightly examples prove their checks bite: a fault planted in each restored copy must be caught.
SELF_TEST = "[drill]\nself_test = true\n\n"


def nightly(project: Path, kind: str, toml: str = "", timeout: float = 900) -> DrillRun:
    """Run the repository's features/nightly_<kind>.feature in `project` (where the backups are), self_test on."""
    (project / "features").mkdir(exist_ok=True)
    shutil.copy(REPO / "features" / f"nightly_{kind}.feature", project / "features")
    (project / "drill.toml").write_text(SELF_TEST + toml)
    return run_drill(project, "run", f"features/nightly_{kind}.feature", timeout=timeout)


def assert_passed_with_sha256(run: DrillRun, project: Path, expected: dict[str, str]) -> list[dict[str, Any]]:
    """Every scenario passed; every backup named in `expected` (file or folder name -> sha256 by sha256sum) is in
    the evidence, the HTML report and the JUnit properties with that sha256."""
    assert run.code == 0, run.output
    assert run.results is not None and run.results["status"] == "passed", run.output
    backups = [b for s in run.results["scenarios"] for b in s["evidence"]["backups"]]
    for name, sha256 in expected.items():
        found = [b for b in backups if b["id"] == name]
        assert found, f"{name} is not in the evidence: {[b['id'] for b in backups]}"
        assert all(b["sha256"] == sha256 and b["source"] == "external" for b in found), found
    report = max(project.glob("reports/*/results.json")).parent
    html = (report / "report.html").read_text()
    properties = {p.get("name"): p.get("value") for p in ET.parse(report / "junit.xml").iter("property")}
    for name, sha256 in expected.items():
        assert sha256 in html, f"the sha256 of {name} is not in report.html"
        assert properties.get(f"drill.backup[{name}].sha256") == sha256, name
    # self_test = true: in every scenario, a fault planted in each restored copy was caught and removed.
    summary = (report / "summary.md").read_text()
    for scenario in run.results["scenarios"]:
        proofs = scenario["evidence"].get("self_test", {})
        assert proofs, f"no self-test in {scenario['name']!r}"
        for store, proof in proofs.items():
            assert proof["status"] == "proven" and proof["removed"] is True, (scenario["name"], store, proof)
            assert proof["fault"].startswith("changed ") and proof["part"] in proof["message"], proof
            assert any(f"| {store} |" in line and "caught" in line for line in summary.splitlines()), summary
    return backups


def test_nightly_postgres_restores_a_gzipped_dump_and_a_base_backup_with_its_wal(drill_dir: Path) -> None:
    backups = drill_dir / "backups" / "postgres"
    with LivePostgres() as pg:
        pg.create_database("userdb")
        pg.psql("CREATE TABLE accounts (id int)", "userdb")
        old = pg_dump_gz(pg, "userdb", backups / "userdb_20200101_000000.sql.gz")  # older: must not be chosen
        pg.psql("DROP TABLE accounts", "userdb")
        pg.seed_ledger("userdb", rows=500)  # 50 accounts + 500 entries
        dump = pg_dump_gz(pg, "userdb", backups / f"userdb_{stamp()}.sql.gz")
        archive = archive_wal(pg)
        base = pg_base_backup_tar_gz(pg, backups / f"base_backup_{stamp()}.tar.gz")
        pg.psql("INSERT INTO accounts (name, balance) SELECT 'late-' || g, 1 FROM generate_series(1, 50) g", "userdb")
        switch_wal(pg, archive)  # the rows written after the base backup are in the archive only
        shutil.copytree(archive, backups / "wal")
        assert pg.psql("SELECT count(*) FROM accounts", "userdb") == "100"
        assert pg.psql("SELECT count(*) FROM entries", "userdb") == "500"
    run = nightly(drill_dir, "postgres")
    evidence = assert_passed_with_sha256(run, drill_dir, {dump.name: sha256sum(dump), base.name: sha256sum(base),
                                                          "wal": folder_sha256(backups / "wal")})
    assert old.name not in {b["id"] for b in evidence}
    formats = {b["id"]: b["format"] for b in evidence}
    assert formats[dump.name] == "sql.gz" and formats[base.name] == "pg-base-backup.tar.gz"
    assert formats["wal"] == "pg-wal-archive"


def test_nightly_redis_loads_an_rdb_copy_and_an_aof_folder(drill_dir: Path) -> None:
    backups = drill_dir / "backups" / "redis"
    with LiveRedis() as live:
        for i in range(1000):
            redis_cli(live, "SET", f"key:{i}", f"välue {i}") if i % 3 else redis_cli(live, "HSET", f"h:{i}", "f", "v")
        assert redis_cli(live, "DBSIZE") == "1000"
        rdb = redis_rdb(live, backups / f"dump_{stamp()}.rdb")
    with LiveRedis(appendonly=True) as live:
        pipe = live.client().pipeline()  # type: ignore[attr-defined]
        for i in range(1000):
            pipe.set(f"key:{i}", f"välue {i}")
        pipe.execute()
        aof = redis_aof_folder(live, backups / f"appendonlydir_{stamp()}")  # + 1 key in the incremental AOF
        assert redis_cli(live, "DBSIZE") == "1001"
    run = nightly(drill_dir, "redis")
    evidence = assert_passed_with_sha256(run, drill_dir, {rdb.name: sha256sum(rdb), aof.name: folder_sha256(aof)})
    folder = next(b for b in evidence if b["id"] == aof.name)
    assert sorted(f["path"] for f in folder["files"]) == sorted(p.name for p in aof.iterdir())
    assert all(f["sha256"] == sha256sum(aof / f["path"]) for f in folder["files"])


def test_nightly_mongodb_restores_every_mongodump_layout(drill_dir: Path) -> None:
    backups = drill_dir / "backups" / "mongodb"
    with LiveMongo() as live:
        client = live.client()
        counts = seed_notifications(client, "notifydb")
        assert sum(counts.values()) == 300
        dump = mongodump_folder(client, "notifydb", backups / f"dump_{stamp()}")
        packed = tar_gz(dump, backups / f"notifydb_{stamp()}.tar.gz")
        archive = mongodump_archive(client, "notifydb", backups / f"notifydb_{stamp()}.archive")
        archive_gz = mongodump_archive(client, "notifydb", backups / f"notifydb_{stamp()}.archive.gz", gzipped=True)
    run = nightly(drill_dir, "mongodb")
    evidence = assert_passed_with_sha256(run, drill_dir, {
        dump.name: folder_sha256(dump), packed.name: sha256sum(packed), archive.name: sha256sum(archive),
        archive_gz.name: sha256sum(archive_gz)})
    assert {b["format"] for b in evidence} == {"mongodump-folder", "mongodump-tar.gz", "mongodump-archive",
                                               "mongodump-archive.gz"}


def test_nightly_firestore_imports_a_managed_export(drill_dir: Path) -> None:
    with LiveFirestore(project="eyewearml-project") as live:
        client: Any = live.client()
        for i in range(40):
            user = client.collection("users").document(f"u-{i:03d}")
            user.set({"email": f"user{i}@example.test", "joined": time.time(), "tags": ["a", i]})
            for j in range(2):
                user.collection("sessions").document(f"s-{j}").set({"n": j, "frame": "aviator"})
        for i in range(10):
            client.collection("products").document(f"p-{i}").set({"price": 10.5 + i, "ref": client.document(
                f"users/u-{i:03d}")})
        # The folder gcloud names an export after (2025-03-25T02:00:00_93416), under the backup bucket's date.
        export = firestore_export(live, drill_dir / "backups" / "firestore" /
                                  time.strftime("%Y-%m-%dT%H:%M:%S_93416", time.gmtime()))
    run = nightly(drill_dir, "firestore")
    assert_passed_with_sha256(run, drill_dir, {export.parent.name: folder_sha256(export.parent)})


def test_nightly_files_restores_certificates_and_configuration(drill_dir: Path, tmp_path: Path) -> None:
    certificate(tmp_path / "ssl", days=90)
    config = tmp_path / "config"
    (config / "nginx").mkdir(parents=True)
    (config / "nginx" / "nginx.conf").write_text("events {}\nhttp { server { listen 443 ssl; } }\n")
    (config / "docker-compose.override.yml").write_text("services:\n  web:\n    restart: always\n")
    (config / ".env").write_text("DATABASE_URL=postgresql://app@db/userdb\n")
    ssl = tar_gz(tmp_path / "ssl", drill_dir / "backups" / "ssl-certificates_latest.tar.gz")
    conf = tar_gz(config, drill_dir / "backups" / "config_latest.tar.gz")
    run = nightly(drill_dir, "files")
    assert_passed_with_sha256(run, drill_dir, {ssl.name: sha256sum(ssl), conf.name: sha256sum(conf)})
    [scenario] = [s for s in run.results["scenarios"] if "certificates" in s["name"]]  # type: ignore[index]
    seen = scenario["evidence"]["certificates"]["ssl/cert.pem"]
    assert seen["subject"] == "CN=eyewear.example" and 89 * DAY < seen["seconds_left"] <= 90 * DAY


def test_nightly_volume_extracts_a_runbook_archive_into_a_volume(drill_dir: Path, tmp_path: Path,
                                                                 docker_engine: dict[str, str]) -> None:
    from tests.docker_engine import HELPER_IMAGE

    data = tmp_path / "prometheus-data"
    for i in range(10):
        (data / f"chunk-{i:02d}.db").parent.mkdir(parents=True, exist_ok=True)
        (data / f"chunk-{i:02d}.db").write_bytes(bytes([i]) * (i * 100))
    for i in range(30):
        (data / "wal" / f"{i:08d}").parent.mkdir(parents=True, exist_ok=True)
        (data / "wal" / f"{i:08d}").write_text(f"segment {i}\n" * i)
    archive = tar_gz(data, drill_dir / "volume-backups" / f"prometheus-data_{stamp()}.tar.gz")
    run = nightly(drill_dir, "volume", toml=f'[stores.prometheus-data]\nkind = "volume"\nprovision = "container"\n'
                                             f'image = "{HELPER_IMAGE}"\n')
    assert_passed_with_sha256(run, drill_dir, {archive.name: sha256sum(archive)})


def test_nightly_gcs_restores_the_newest_dated_copy_in_the_backup_bucket(drill_dir: Path) -> None:
    from tests.live_servers import LiveGcs

    with LiveGcs() as live:
        client: Any = live.client()
        source = client.create_bucket("eyewearml-models")
        backups = client.create_bucket("eyewearml-backups")
        for i in range(24):
            source.blob(f"models/v{i % 3}/weights-{i:02d}.bin").upload_from_string(bytes([i]) * (100 + i))
        source.blob("models/face-analysis-v2.0/model.pb").upload_from_string(b"\x08\x01model")
        for blob in list(client.list_blobs(source))[:5]:  # an older copy, smaller: must not be the one restored
            source.copy_blob(blob, backups, f"models/2020-01-01/{blob.name}")
        today = time.strftime("%Y-%m-%d", time.gmtime())
        for blob in client.list_blobs(source):  # gsutil -m cp -r gs://eyewearml-models gs://.../models/DATE/
            source.copy_blob(blob, backups, f"models/{today}/{blob.name}")
        source.blob("models/written-after-the-copy.bin").upload_from_string(b"not in the backup")
        toml = ('[stores.models]\nkind = "gcs"\nprovision = "live"\nurl_env = "MODELS_GCS"\n'
                'bucket = "eyewearml-models"\n')
        (drill_dir / "drill.toml").write_text(SELF_TEST + toml)
        run = run_nightly_with_env(drill_dir, "gcs", {"MODELS_GCS": f"{live.endpoint}?project=test-project"})
        copies = sorted(f"{b.name[len(f'models/{today}/'):]}:{b.md5_hash}" for b in
                        client.list_blobs(backups, prefix=f"models/{today}/"))
        assert len(copies) == 25
        assert sorted(b.name for b in client.list_blobs(source)) == sorted(
            [c.split(":")[0] for c in copies] + ["models/written-after-the-copy.bin"])  # production untouched
        buckets = sorted(b.name for b in client.list_buckets())
        assert buckets == ["eyewearml-backups", "eyewearml-models"]  # the scratch bucket was removed
    assert run.code == 0, run.output
    [scenario] = run.results["scenarios"]  # type: ignore[index]
    [backup] = scenario["evidence"]["backups"]
    assert backup["id"] == f"gs://eyewearml-backups/models/{today}/" and backup["format"] == "gcs-dated-copy"
    assert backup["source"] == "external" and backup["size"] == sum(100 + i for i in range(24)) + len(b"\x08\x01model")


def run_nightly_with_env(project: Path, kind: str, env: dict[str, str]) -> DrillRun:
    (project / "features").mkdir(exist_ok=True)
    shutil.copy(REPO / "features" / f"nightly_{kind}.feature", project / "features")
    return run_drill(project, "run", f"features/nightly_{kind}.feature", env=env, timeout=900)


def test_the_bundled_nightly_features_are_tagged_so_that_the_quick_start_leaves_them_out() -> None:
    for feature in sorted((REPO / "features").glob("nightly_*.feature")):
        assert feature.read_text().startswith("@nightly @rpo:25h\n"), feature  # daily backups: at most a day old
    kinds = {p.stem.removeprefix("nightly_") for p in (REPO / "features").glob("nightly_*.feature")}
    assert kinds == {"postgres", "mongodb", "redis", "volume", "gcs", "firestore", "files"}
    assert '--tags "not nightly"' in (REPO / "dev").read_text()


def _json(path: Path) -> Any:
    return json.loads(path.read_text())
