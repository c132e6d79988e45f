"""Firestore stores against the official Cloud Firestore emulator: drills that pass, planted faults that fail by name.

Drills run as a user runs them (`drill run` in a subprocess); faults are planted by a step plugin
(`faults.py`, named in drill.toml's `[drill] plugins`) through the store's public `client()`.
The emulator (Debian package google-cloud-cli-firestore-emulator) and Java are on the machine
image; when either is missing these tests FAIL with the provisioning error, they never skip.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore_v1 import GeoPoint
from google.cloud.firestore_v1.vector import Vector

from drill.config import StoreConfig, load_config
from drill.errors import BackupError, ConfigError, ProvisionError, SafetyError, StoreError
from drill.provision.local_firestore import GROUP_FILE, LocalFirestoreEmulator, _group_alive
from drill.stores.firestore import FirestoreServer, FirestoreStore, project_id
from drill.stores.firestore_codec import MARKER_COLLECTION, FingerprintBuilder, canonical, encode, part_of
from drill.stores.firestore_seed import seed_documents
from tests import oracles
from tests.conftest import (
    assert_rpo_between,
    closed_port,
    location_port,
    plugin_env,
    plugin_project,
    port_open,
    run_drill,
    start_waiting_drill,
)
from tests.live_servers import LiveFirestore

FAULTS_PLUGIN = '''
from pytest_bdd import parsers, when


@when(parsers.parse('the Firestore document "{path}" of "{store}" gets {change}'))
def plant(drill, path, store, change):
    document = drill.store(store).client().document(path)
    data = document.get().to_dict()
    if change == "a changed field":
        document.update({"email": "mallory@example.test"})
    elif change == "deleted":
        document.delete()
    elif change == "a timestamp turned into a string":
        document.update({"started_at": data["started_at"].isoformat()})
    elif change != "no change":
        raise AssertionError(f"unknown change {change!r}")
'''

SCENARIO = '''
  Scenario: {name}
    Given the Firestore store "app"
    And "app" is seeded with 400 documents
    And a backup of "app" is taken
    When "app" is lost
    And "app" is restored from its latest backup
    And the Firestore document "{path}" of "app" gets {change}
    Then "app" matches its state at the backup
'''

# 400 documents: 60 products, 100 users, 160 users/*/sessions, 80 users/*/sessions/*/events.
FAULTS: dict[str, tuple[str, str, list[str]]] = {
    "faithful restore": ("users/u-000001", "no change", []),
    "a changed field": ("users/u-000003", "a changed field",
                        ["collection users: content differs with the same count (100 documents): at least one "
                         "changed", "document users/u-000003: field email changed value (a string)"]),
    "a missing document in a subcollection": (
        "users/u-000001/sessions/s-000001", "deleted",
        ["collection users/*/sessions: 160 documents at the backup, 159 now (1 missing)",
         "document users/u-000001/sessions/s-000001: missing (it is in the backup)"]),
    "a timestamp turned into a string": (
        "users/u-000002/sessions/s-000002", "a timestamp turned into a string",
        ["collection users/*/sessions: field started_at changed (was: timestamp; now: string, timestamp)",
         "collection users/*/sessions: content differs with the same count (160 documents)",
         "document users/u-000002/sessions/s-000002: field started_at was a timestamp at the backup, is a string "
         "now"]),
}

EXTRA = '''
  Scenario: restored into another project with markers
    Given the Firestore store "app"
    And "app" is seeded with 200 documents
    And writes to "app" are recorded every 200 milliseconds
    And a backup of "app" is taken
    And 1 second passes
    When "app" is restored from its latest backup into "app_copy"
    Then "app_copy" matches the state of "app" at the backup
    And "app_copy" holds 200 documents
    And "app_copy" holds 40 documents in "users/*/sessions/*/events"
    And "app" holds 200 documents
'''


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    feature = "Feature: planted faults in a Firestore restore\n" + "".join(
        SCENARIO.format(name=name, path=path, change=change) for name, (path, change, _) in FAULTS.items()) + EXTRA
    root = plugin_project(tmp_path_factory.mktemp("firestore-faults"), feature, FAULTS_PLUGIN)
    return run_drill(root, "run", env=plugin_env(root), timeout=600)


def test_faithful_restore_passes_with_every_collection_path(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["app"]
    assert prints["differences"] == []
    assert prints["before"]["parts"] == prints["after"]["parts"]
    assert {name: part["count"] for name, part in prints["before"]["parts"].items()} == {
        "products": 60, "users": 100, "users/*/sessions": 160, "users/*/sessions/*/events": 80}
    users = prints["before"]["parts"]["users"]["schema"]
    assert users["field home"] == "geopoint" and users["field favourite"] == "reference"
    assert users["field last_login"] == "null, timestamp"
    assert prints["before"]["parts"]["products"]["schema"]["field thumbnail_sha"] == "bytes"
    [backup] = scenario["evidence"]["backups"]
    assert backup["format"] == "drill-firestore-jsonl" and len(backup["sha256"]) == 64
    assert scenario["evidence"]["stores"]["app"]["kind"] == "firestore"


@pytest.mark.parametrize("name", [n for n, (_, _, msgs) in FAULTS.items() if msgs])
def test_planted_fault_fails_with_a_message_naming_it(fault_run: Any, name: str) -> None:
    scenario = fault_run.failed_verification(name, "app", *FAULTS[name][2])
    # Exactly the planted change is named at document level: nothing else differs.
    details = scenario["evidence"]["fingerprints"]["app"]["details"]
    assert details == [m for m in FAULTS[name][2] if m.startswith("document ")], details


def test_restore_into_another_project_keeps_markers_for_the_rpo(fault_run: Any) -> None:
    scenario = fault_run.scenario("restored into another project with markers")
    assert scenario["status"] == "passed", fault_run.output
    assert scenario["rpo_method"] == "markers"
    assert_rpo_between(fault_run, scenario, 1.0, 0.2, backup_in_gap="app")  # a second of markers is not in it
    assert scenario["evidence"]["markers"]["app_copy"]["lost"] >= 3


def test_the_run_fails_as_a_whole_and_leaves_no_emulator(fault_run: Any) -> None:
    assert fault_run.code == 1
    assert "2/5 scenarios passed" in fault_run.stdout
    for scenario in fault_run.results["scenarios"]:  # each scenario's emulator is gone with its port
        assert _port_closed(scenario["evidence"]["stores"]["app"]["location"])


def _port_closed(location: str) -> bool:
    return not port_open(location_port(location))


def test_the_bundled_firestore_feature_passes(tmp_path: Path) -> None:
    feature = Path(__file__).resolve().parent.parent / "features" / "firestore_restore.feature"
    run = run_drill(tmp_path, "run", str(feature), timeout=600)
    assert run.code == 0, run.output
    scenario = run.scenario("The Firestore project is restored from its latest backup")
    assert scenario["rpo_method"] == "markers" and scenario["rto_seconds"] > 0


LIVE = '''Feature: live Firestore
  Scenario: a live project is restored into a scratch project, never over itself
    Given the Firestore store "prod"
    And a backup of "prod" is taken
    When "prod" is restored from its latest backup into "prod_drill_copy"
    Then "prod_drill_copy" matches the state of "prod" at the backup
    And "prod_drill_copy" holds 120 documents

  Scenario: a live project is not lost without permission
    Given the Firestore store "prod"
    When "prod" is lost
'''


def test_a_live_emulator_project_restores_into_a_scratch_project(tmp_path: Path) -> None:
    # The "live" emulator is started by the test, outside drill, and read with the Firestore client only.
    with LiveFirestore(project="prod-app") as emulator:
        server = FirestoreServer(emulator_host=emulator.host, description="test")
        live = FirestoreStore(name="prod", config=StoreConfig(name="prod", kind="firestore"), server=server,
                              project="prod-app")
        live.seed(120)  # set-up only: what the project holds is then read by the oracle
        reader: Any = emulator.client()
        before = oracles.firestore_state(reader)
        assert len(before) == 120
        (tmp_path / "features").mkdir()
        (tmp_path / "features" / "live.feature").write_text(LIVE, encoding="utf-8")
        (tmp_path / "drill.toml").write_text(
            '[stores.prod]\nkind = "firestore"\nprovision = "live"\nurl_env = "PROD_FIRESTORE"\nproject = "prod-app"\n',
            encoding="utf-8")
        run = run_drill(tmp_path, "run", env={"PROD_FIRESTORE": f"http://{emulator.host}/ignored"})
        restored = run.scenario("a live project is restored into a scratch project, never over itself")
        assert restored["status"] == "passed", run.output
        refused = run.scenario("a live project is not lost without permission")
        assert refused["status"] == "failed"
        assert "refusing to lose live store 'prod'" in refused["errors"][0]["message"]
        # The live project is untouched (document by document, typed values), and the scratch project drill
        # restored into was emptied afterwards.
        assert oracles.firestore_state(reader) == before
        scratch = [name for name in restored["evidence"]["markers"] if name.startswith("prod_drill_")]
        assert len(scratch) == 1, restored["evidence"]["markers"]
        assert restored["evidence"]["fingerprints"][scratch[0]]["differences"] == []
        assert oracles.firestore_state(LiveFirestore.client_for(emulator.host, project_id(scratch[0]))) == {}
        server.close()


# -- the store used directly, on one emulator --------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalFirestoreEmulator]:
    local = LocalFirestoreEmulator()
    try:
        local.start()
    except ProvisionError as exc:
        pytest.fail(f"the Firestore emulator could not start: {exc}")
    yield local
    local.stop()


@pytest.fixture
def store(emulator: LocalFirestoreEmulator, request: pytest.FixtureRequest) -> Iterator[FirestoreStore]:
    project = project_id(f"t-{request.node.name}")[:30].rstrip("-")
    server = FirestoreServer(emulator_host=emulator.host, description="test emulator")
    made = FirestoreStore(name=project, config=StoreConfig(name=project, kind="firestore"), server=server,
                          project=project)
    made.lose()
    yield made
    made.lose()
    server.close()


def _typed_document(store: FirestoreStore) -> dict[str, Any]:
    client = store.client()
    return {
        "when": dt.datetime(2024, 1, 15, 14, 30, 0, 123456, tzinfo=dt.UTC),
        "where": GeoPoint(52.52, 13.405),
        "who": client.document("users/u-1"),
        "raw": b"\x00\xff\x10binary",
        "nested": {"a": {"b": [1, 2.0, "three", None, {"deep": True}]}, "$dollar": "kept"},
        "list": [dt.datetime(2020, 2, 29, tzinfo=dt.UTC), GeoPoint(-1.0, 2.0), b"\x01"],
        "nothing": None, "int": 1, "float": 1.0, "nan": float("nan"), "inf": float("-inf"),
        "text": "Zoë — 東京 ☕", "vector": Vector([0.5, 1.5]),
    }


def test_every_firestore_type_survives_backup_and_restore_into_another_project(store: FirestoreStore,
                                                                                tmp_path: Path) -> None:
    client = store.client()
    client.document("users/u-1").set(_typed_document(store))
    client.document("users/u-1/sessions/s-1/events/e-1").set({"at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)})
    # A document under a parent that does not exist (Firestore allows it): reached by the recursive query.
    client.document("orphans/missing-parent/kids/k-1").set({"n": 7})
    artifact = store.backup(tmp_path)
    assert artifact.fingerprint is not None
    assert set(artifact.fingerprint.parts) == {"users", "users/*/sessions/*/events", "orphans/*/kids"}
    copy = store.restore(artifact, into="copy_of_it")
    assert isinstance(copy, FirestoreStore) and copy.project == "copy-of-it"
    assert copy.fingerprint().parts == artifact.fingerprint.parts
    data = copy.client().document("users/u-1").get().to_dict()
    assert data is not None
    assert data["when"] == dt.datetime(2024, 1, 15, 14, 30, 0, 123456, tzinfo=dt.UTC)
    assert data["where"] == GeoPoint(52.52, 13.405)
    assert data["who"].path == "users/u-1" and data["who"]._client.project == "copy-of-it"  # re-pointed
    assert data["raw"] == b"\x00\xff\x10binary"
    assert data["nested"] == {"a": {"b": [1, 2.0, "three", None, {"deep": True}]}, "$dollar": "kept"}
    assert isinstance(data["int"], int) and isinstance(data["float"], float)
    assert data["nan"] != data["nan"] and data["inf"] == float("-inf")
    assert data["text"] == "Zoë — 東京 ☕" and list(data["vector"]) == [0.5, 1.5]
    assert data["list"][0] == dt.datetime(2020, 2, 29, tzinfo=dt.UTC)
    copy.lose()
    assert copy.count() == 0


def test_the_backup_file_is_typed_json_lines_with_an_end_record(store: FirestoreStore, tmp_path: Path) -> None:
    store.client().document("users/u-1").set(_typed_document(store))
    artifact = store.backup(tmp_path)
    assert artifact.path.name.endswith(".firestore.jsonl.gz")
    lines = [json.loads(line) for line in gzip.decompress(artifact.path.read_bytes()).decode().splitlines()]
    assert lines[0]["format"] == "drill-firestore-jsonl" and lines[0]["project"] == store.project
    fields = lines[1]["fields"]
    assert lines[1]["path"] == "users/u-1"
    assert fields["when"] == {"$ts": "2024-01-15T14:30:00.123456Z"}
    assert fields["where"] == {"$geo": [52.52, 13.405]}
    assert fields["who"] == {"$ref": "users/u-1"}
    assert fields["raw"] == {"$bytes": base64.b64encode(b"\x00\xff\x10binary").decode()}
    assert fields["nested"] == {"$map": {"a": {"b": [1, 2.0, "three", None, {"deep": True}]}, "$dollar": "kept"}}
    assert fields["nan"] == {"$double": "NaN"} and fields["inf"] == {"$double": "-Infinity"}
    assert lines[-1]["end"]["documents"] == 1


def test_a_timestamp_and_its_string_hash_differently_and_so_do_1_and_1_0() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert canonical("a/b", encode({"t": when})) != canonical("a/b", encode({"t": when.isoformat()}))
    assert canonical("a/b", encode({"t": "2024-01-01T00:00:00.000000Z"})) != canonical("a/b", encode({"t": when}))
    assert canonical("a/b", encode({"v": 1})) != canonical("a/b", encode({"v": 1.0}))
    assert canonical("a/b", encode({"x": 1, "y": 2})) == canonical("a/b", encode({"y": 2, "x": 1}))
    assert canonical("a/b", {"m": {"k": 1}}) != canonical("a/c", {"m": {"k": 1}})  # the path counts
    first, second = FingerprintBuilder(), FingerprintBuilder()
    for path in ("users/a", "users/b", "users/a/sessions/s"):
        first.add(path, {"n": path})
    for path in ("users/a/sessions/s", "users/b", "users/a"):  # order does not count
        second.add(path, {"n": path})
    first.add(f"{MARKER_COLLECTION}/000000000001", {"seq": 1})  # markers are not part of the data
    assert first.result().parts == second.result().parts
    assert part_of("users/u1/sessions/s1/events/e1") == "users/*/sessions/*/events"


def test_a_backup_reads_one_moment_and_markers_stay_out_of_fingerprints(store: FirestoreStore,
                                                                         tmp_path: Path) -> None:
    store.seed(50)
    before = store.fingerprint()
    sink = store.markers()
    sink.prepare()
    sink.write(type("M", (), {"seq": 1, "written_at": 1.5})())  # type: ignore[arg-type]
    assert store.fingerprint().parts == before.parts
    assert store.count() == 50
    newest = sink.newest()
    assert newest is not None and (newest.seq, newest.written_at) == (1, 1.5)
    artifact = store.backup(tmp_path)
    assert artifact.fingerprint is not None and artifact.fingerprint.parts == before.parts
    assert abs(artifact.consistent_at - time.time()) < 60


def test_a_corrupt_truncated_or_altered_backup_is_refused_before_the_target_is_touched(
        store: FirestoreStore, tmp_path: Path) -> None:
    store.seed(40)
    artifact = store.backup(tmp_path)
    good = artifact.path.read_bytes()
    artifact.path.write_bytes(good[:-20])
    with pytest.raises(BackupError, match="is corrupt: sha256"):
        store.restore(artifact)
    assert store.count() == 40  # untouched
    # Without a recorded sha256 (a backup found on disk), the file itself must be whole and consistent.
    external = replace(artifact, sha256=None)
    with pytest.raises(BackupError, match=r"not a valid backup line|truncated"):
        store.verify_backup(external)
    lines = gzip.decompress(good).decode().splitlines()
    lines.pop(3)  # one document less than the end record says
    artifact.path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(BackupError, match="the end record says 40 documents, the file holds 39"):
        store.verify_backup(external)
    lines = gzip.decompress(good).decode().splitlines()
    lines[2] = lines[2].replace('"$ts"', '"$tz"', 1)
    artifact.path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(BackupError, match="does not decode: unknown type tag '\\$tz'"):
        store.verify_backup(external)
    artifact.path.write_bytes(b"PGDMP not a backup")
    with pytest.raises(BackupError, match="not a readable drill Firestore backup"):
        store.verify_backup(external)
    assert store.count() == 40


def test_lose_deletes_subcollections_and_count_reads_collection_paths(store: FirestoreStore) -> None:
    store.seed(100)
    assert store.count() == 100
    assert store.count("users") == 25 and store.count("products") == 15
    assert store.count("users/*/sessions") == 40 and store.count("users/*/sessions/*/events") == 20
    assert store.count("users/u-000001/sessions") == 2  # sessions 1 and 26 belong to user 1 (of 25)
    with pytest.raises(StoreError, match="is not a collection path"):
        store.count("users/u-000001")
    with pytest.raises(StoreError, match="no collection 'nope'"):
        store.count("nope")
    with pytest.raises(StoreError, match="cannot seed"):
        store.seed(10)
    store.lose()
    assert store.count() == 0
    assert list(store.client().collection_group("events").stream()) == []


def test_seed_is_exact_deterministic_and_lazy() -> None:
    for count in (0, 1, 2, 3, 4, 10, 999):
        assert sum(1 for _ in seed_documents(count)) == count
    assert list(seed_documents(60)) == list(seed_documents(60))
    assert {part_of(path) for path, _ in seed_documents(100)} == {
        "products", "users", "users/*/sessions", "users/*/sessions/*/events"}
    assert not isinstance(seed_documents(10), list)


def test_a_live_store_is_not_lost_or_seeded_without_permission(store: FirestoreStore) -> None:
    live = replace(store, config=StoreConfig(name="x", kind="firestore", provision="live", url_env="X"))
    with pytest.raises(SafetyError, match="refusing to lose live store"):
        live.lose()
    with pytest.raises(SafetyError, match="does not allow writes"):
        live.seed(10)


# -- provisioning -----------------------------------------------------------------------------------------


def test_stop_ends_the_whole_process_group_and_the_jvm() -> None:
    with LocalFirestoreEmulator() as local:
        assert local.root is not None
        pgid = int((local.root / GROUP_FILE).read_text())
        assert _group_alive(pgid)
        root = local.root
    assert not _group_alive(pgid)
    assert not root.exists()


def test_an_emulator_left_by_a_killed_drill_is_swept(tmp_path: Path) -> None:
    # A drill that is killed with SIGKILL leaves its emulator: the next provisioning stops it.
    script = ("import sys, time; from drill.provision.local_firestore import LocalFirestoreEmulator as E; "
              "e = E(); e.start(); print(e.root, flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    root = Path(child.stdout.readline().strip())
    pgid = int((root / GROUP_FILE).read_text())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _group_alive(pgid)
    with LocalFirestoreEmulator():
        assert not _group_alive(pgid)
        assert not root.exists()


def test_a_missing_emulator_or_java_fails_with_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("DRILL_FIRESTORE_EMULATOR", str(tmp_path / "cloud_firestore_emulator"))
    with pytest.raises(ProvisionError, match=r"no Cloud Firestore emulator at DRILL_FIRESTORE_EMULATOR=.*"
                                             r"google-cloud-cli-firestore-emulator"):
        LocalFirestoreEmulator().start()
    monkeypatch.delenv("DRILL_FIRESTORE_EMULATOR")
    monkeypatch.setenv("JAVA", str(tmp_path / "no-java"))
    with pytest.raises(ProvisionError, match="needs Java"):
        LocalFirestoreEmulator().start()


def test_an_emulator_that_dies_on_start_up_fails_with_its_log(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    fake_dir = tmp_path / "emu"
    fake_dir.mkdir()
    (fake_dir / "cloud-firestore-emulator.jar").write_bytes(b"")
    wrapper = fake_dir / "cloud_firestore_emulator"
    wrapper.write_text("#!/bin/sh\necho 'Exception in thread main: cannot bind' >&2\nexit 3\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("DRILL_FIRESTORE_EMULATOR", str(wrapper))
    with pytest.raises(ProvisionError, match=r"(?s)exited with code 3 on start-up.*cannot bind"):
        LocalFirestoreEmulator().start()


def test_firestore_config_keys_are_validated_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "drill.toml"
    path.write_text('[stores.app]\nkind = "firestore"\nproject = "Not_A_Project"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drill.toml:3: \[stores.app.project\] must be a Google Cloud project id"):
        load_config(path)
    path.write_text('[stores.app]\nkind = "firestore"\n\nexport_uri = "s3://bucket"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drill.toml:4: \[stores.app.export_uri\] must be a Cloud Storage"):
        load_config(path)
    path.write_text('[stores.app]\nkind = "firestore"\nprovision = "live"\nurl_env = "APP_FS"\nproject = "my-app"\n'
                    'export_uri = "gs://my-backups/firestore"\n', encoding="utf-8")
    store = load_config(path).stores["app"]
    assert (store.project, store.export_uri) == ("my-app", "gs://my-backups/firestore")


def test_a_live_cloud_firestore_store_without_credentials_fails_clearly(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    from drill.cleanup import CleanupStack
    from drill.provision.firestore import provision_live

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud application-default login
    with closed_port() as closed:
        nowhere = f"127.0.0.1:{closed.port}"
        monkeypatch.setenv("GCE_METADATA_HOST", nowhere)  # no metadata server
        monkeypatch.setenv("GCE_METADATA_IP", nowhere)
        monkeypatch.setenv("PROD_FS", "firestore://my-real-project")
        config = StoreConfig(name="prod", kind="firestore", provision="live", url_env="PROD_FS")
        with pytest.raises(ProvisionError, match="no Google credentials for Cloud Firestore, project my-real-project"):
            provision_live(config, CleanupStack())
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", nowhere)  # would silently redirect a live project
        with pytest.raises(ProvisionError, match="FIRESTORE_EMULATOR_HOST is set"):
            provision_live(config, CleanupStack())


def test_project_ids_from_store_names() -> None:
    assert project_id("eyewearml") == "eyewearml"
    assert project_id("userdb_restored") == "userdb-restored"
    assert project_id("App.Data") == "app-data"
    assert project_id("9lives") == "p-9lives"


LONG = '''Feature: long Firestore drill
  Scenario: a drill cancelled while it waits
    Given the Firestore store "app"
    And "app" is seeded with 50 documents
    And writes to "app" are recorded every 100 milliseconds
    When 10 minutes pass
    And "app" is lost
'''


def test_sigterm_stops_the_emulator_group_and_writes_interrupted_results(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "long.feature").write_text(LONG, encoding="utf-8")
    # Readiness: the drill says it waits (emulator up, markers written).
    drill = start_waiting_drill(tmp_path, "run", timeout=180)
    pid = str(drill.proc.pid)
    [root] = [p for p in Path(tempfile.gettempdir()).glob("drill-firestore-*")
              if (p / "drill-owner.pid").is_file() and (p / "drill-owner.pid").read_text().strip() == pid]
    pgid = int((root / GROUP_FILE).read_text())
    assert _group_alive(pgid)
    output = drill.stop(signal.SIGTERM, timeout=120)
    assert drill.proc.returncode == 130, output
    assert not _group_alive(pgid), "the emulator's JVM must be stopped with its wrapper"
    assert not root.exists()
    [results_file] = list((tmp_path / "reports").glob("*/results.json"))
    [scenario] = json.loads(results_file.read_text())["scenarios"]
    assert scenario["status"] == "interrupted"
    assert scenario["evidence"]["markers"]["app"]["written"] > 0
