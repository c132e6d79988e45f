"""MongoDB stores against a real wire-protocol server (nx-27017 here, mongod when it is on PATH).

Drills run as a user runs them (`drill run` in a subprocess); faults are planted by a step plugin
(`faults.py`, named in drill.toml) through the store's public `database()`. With CI set, a server
that cannot start fails these tests; they never skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest

from drill.config import StoreConfig
from drill.errors import BackupError, ProvisionError
from drill.provision.local_mongodb import LocalMongoServer
from drill.stores.mongodb import SUMS_FILE, MongoServer, MongoStore, document_hash, seed_documents
from tests.conftest import assert_rpo_between, plugin_env, plugin_project, run_drill

FAULTS_PLUGIN = '''
from pytest_bdd import parsers, when


@when(parsers.parse('the MongoDB collection "{coll}" of "{store}" gets {change}'))
def plant(drill, coll, store, change):
    db = drill.store(store).database()
    first = db[coll].find_one(sort=[("_id", 1)])
    if change == "a changed field":
        db[coll].update_one({"_id": first["_id"]}, {"$set": {"status": "tampered"}})
    elif change == "an int turned into a double":  # 3 -> 3.0: equal as numbers, not as stored data
        db[coll].update_one({"_id": first["_id"]}, {"$set": {"attempts": float(first["attempts"])}})
    elif change == "a missing document":
        db[coll].delete_one({"_id": first["_id"]})
    elif change == "a missing index":
        [name] = [ix["name"] for ix in db[coll].list_indexes() if dict(ix["key"]) == {"status": 1}]
        db[coll].drop_index(name)
    elif change != "no change":
        raise AssertionError(f"unknown change {change!r}")
'''

SCENARIO = '''
  Scenario: {name}
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 500 documents
    And a backup of "notifydb" is taken
    When "notifydb" is lost
    And "notifydb" is restored from its latest backup
    And the MongoDB collection "notifications" of "notifydb" gets {change}
    Then "notifydb" matches its state at the backup
'''

EXTRA = '''
  Scenario: restored into a new database
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 300 documents
    And a backup of "notifydb" is taken
    When "notifydb" is restored from its latest backup into "notifydb_copy"
    Then "notifydb_copy" matches the state of "notifydb" at the backup
    And "notifydb_copy" holds 300 documents
    And "notifydb_copy" holds 180 documents in "notifications"
    And "notifydb" holds 300 documents

  Scenario: markers measure the data loss
    Given the MongoDB store "notifydb"
    And "notifydb" is seeded with 100 documents
    And writes to "notifydb" are recorded every 200 milliseconds
    And a backup of "notifydb" is taken
    And 1 second passes
    When "notifydb" is lost
    And "notifydb" is restored from its latest backup
    Then "notifydb" matches its state at the backup
    And "notifydb" holds 100 documents
'''

FIRST = "notifications/65a600000000000000000000"  # the first notification of the seed, by _id

# name -> (planted change, what the failure message must say: the collection, then the document)
FAULTS: dict[str, tuple[str, list[str]]] = {
    "faithful restore": ("no change", []),
    "a changed field": ("a changed field",
                        ["collection notifications: content differs with the same count (300 documents)",
                         f"document {FIRST}: field status changed value (a string)"]),
    "an int turned into a double": (
        "an int turned into a double",
        ["collection notifications: content differs with the same count (300 documents)",
         f"document {FIRST}: field attempts was a int32 at the backup, is a double now"]),
    "a missing document": ("a missing document",
                           ["collection notifications: 300 documents at the backup, 299 now (1 missing)",
                            f"document {FIRST}: missing (it is in the backup)"]),
    "a missing index": ("a missing index", ["collection notifications: index {status: 1} missing"]),
}


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    feature = "Feature: planted faults in a MongoDB restore\n" + "".join(
        SCENARIO.format(name=name, change=change) for name, (change, _) in FAULTS.items()) + EXTRA
    root = plugin_project(tmp_path_factory.mktemp("mongo-faults"), feature, FAULTS_PLUGIN)
    return run_drill(root, "run", env=plugin_env(root))


def test_faithful_restore_passes(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["notifydb"]
    assert prints["differences"] == []
    assert prints["before"]["parts"] == prints["after"]["parts"]
    assert prints["before"]["total"] == 500
    assert set(prints["before"]["parts"]) == {"notifications", "users", "templates"}
    # The unique index is part of what is compared (keyed by key spec: see drill/stores/mongodb.py).
    assert prints["before"]["parts"]["users"]["schema"]["index {email: 1}"] == "{email: 1} unique"
    [backup] = scenario["evidence"]["backups"]
    assert backup["format"] == "mongodump" and backup["sha256"]


@pytest.mark.parametrize("name", [n for n, (_, msg) in FAULTS.items() if msg])
def test_planted_fault_fails_with_a_message_naming_it(fault_run: Any, name: str) -> None:
    collection, *documents = FAULTS[name][1]
    scenario = fault_run.failed_verification(name, "notifydb", collection, *documents)
    prints = scenario["evidence"]["fingerprints"]["notifydb"]
    [difference] = prints["differences"]
    assert collection in difference["message"]
    # The document lines name exactly the planted document, and only it.
    assert prints["details"] == documents, prints["details"]


def test_restore_into_a_new_database_and_markers(fault_run: Any) -> None:
    copy = fault_run.scenario("restored into a new database")
    assert copy["status"] == "passed", fault_run.output
    rpo = fault_run.scenario("markers measure the data loss")
    assert rpo["status"] == "passed", fault_run.output
    assert rpo["rpo_method"] == "markers"
    assert_rpo_between(fault_run, rpo, 1.0, 0.2, backup_in_gap="notifydb")  # a second of markers lost


def test_the_run_fails_as_a_whole(fault_run: Any) -> None:
    assert fault_run.code == 1
    assert f"3/{len(FAULTS) + 2} scenarios passed" in fault_run.stdout


# -- the store used directly -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalMongoServer]:
    local = LocalMongoServer()
    try:
        local.start()
    except ProvisionError as exc:
        pytest.fail(f"no MongoDB server could start: {exc}")
    yield local
    local.stop()


@pytest.fixture
def store(server: LocalMongoServer, request: pytest.FixtureRequest) -> Iterator[MongoStore]:
    name = f"t_{request.node.name.replace('[', '_').replace(']', '')[:40]}"
    mongo = MongoServer(uri=server.uri, description="test")
    mongo.client().drop_database(name)
    yield MongoStore(name=name, config=StoreConfig(name=name, kind="mongodb"), server=mongo, database_name=name)
    mongo.client().drop_database(name)
    mongo.close()


def test_backup_is_in_mongodump_layout(store: MongoStore, tmp_path: Path) -> None:
    store.seed(100)
    artifact = store.backup(tmp_path)
    assert artifact.path.is_dir() and not list(tmp_path.glob(".*partial"))
    db_dir = artifact.path / store.database_name
    assert sorted(p.name for p in db_dir.iterdir()) == [
        "notifications.bson", "notifications.metadata.json", "templates.bson", "templates.metadata.json",
        "users.bson", "users.metadata.json"]
    with (db_dir / "users.bson").open("rb") as handle:
        assert len(list(bson.decode_file_iter(handle))) == 30
    metadata = json.loads((db_dir / "users.metadata.json").read_text())
    assert metadata["collectionName"] == "users" and "options" in metadata and metadata["uuid"] == ""
    # canonical extended JSON, as mongodump writes it
    assert {"v": {"$numberInt": "2"}, "key": {"_id": {"$numberInt": "1"}}, "name": "_id_"} in metadata["indexes"]
    assert artifact.fingerprint is not None and artifact.fingerprint.total == 100
    assert (artifact.path / SUMS_FILE).is_file()
    store.verify_backup(artifact)


def test_gzip_backup_restores(store: MongoStore, tmp_path: Path) -> None:
    store.gzip = True
    store.seed(60)
    artifact = store.backup(tmp_path)
    assert {p.suffix for p in (artifact.path / store.database_name).iterdir()} == {".gz"}
    store.lose()
    store.restore(artifact)
    assert store.fingerprint().parts == artifact.fingerprint.parts  # type: ignore[union-attr]


def test_a_corrupt_or_truncated_backup_is_refused_before_the_target_is_touched(
        store: MongoStore, tmp_path: Path) -> None:
    store.seed(60)
    artifact = store.backup(tmp_path)
    data = artifact.path / store.database_name / "notifications.bson"
    data.write_bytes(data.read_bytes()[:-7])
    with pytest.raises(BackupError, match=r"notifications\.bson has sha256"):
        store.restore(artifact)
    assert store.count() == 60  # untouched
    artifact.sha256 = None  # a backup drill did not take: the documents themselves must decode
    (artifact.path / SUMS_FILE).unlink()
    with pytest.raises(BackupError, match="does not decode completely"):
        store.verify_backup(artifact)


def test_document_hash_ignores_field_order_but_not_values_or_types() -> None:
    a = {"_id": 1, "x": {"b": 2, "a": [1, {"d": 1, "c": 2}]}}
    b = {"x": {"a": [1, {"c": 2, "d": 1}], "b": 2}, "_id": 1}
    assert document_hash(a) == document_hash(b)
    assert document_hash(a) != document_hash({"_id": 1, "x": {"b": 2, "a": [{"d": 1, "c": 2}, 1]}})
    assert document_hash({"v": 1}) != document_hash({"v": 1.0})


def test_seed_is_deterministic_and_exact() -> None:
    for count in (0, 1, 2, 3, 10, 2000):
        docs = seed_documents(count)
        assert sum(len(v) for v in docs.values()) == count
    assert seed_documents(50) == seed_documents(50)


@pytest.mark.parametrize(("collection", "file_stem"), [
    ("users", "users"),
    ("../../etc/cron.d/x", "..%2F..%2Fetc%2Fcron.d%2Fx"),  # one plain file name, inside the dump
    ("a b/c", "a%20b%2Fc"),
    ("100%", "100%25"),
    ("évé\x01", "%C3%A9v%C3%A9%01"),
    ("$&+:=@~-_.", "$&+:=@~-_."),  # what Go's url.PathEscape leaves alone
])
def test_collection_names_become_file_names_as_mongodump_encodes_them(collection: str, file_stem: str) -> None:
    """mongodump writes `<db>/<url.PathEscape(collection)>.bson`; drill's own dump does the same, so a collection
    named `../../x` (legal in MongoDB) never becomes a path. (nx-27017, the server these tests run, refuses such
    names, so the encoding is checked here against mongodump's documented output.)"""
    import urllib.parse

    from drill.stores.mongodb import file_stem as encode

    assert encode(collection) == file_stem
    assert "/" not in encode(collection) and encode(collection) not in (".", "..")
    assert urllib.parse.unquote(encode(collection)) == collection  # read back to the same name


def test_documents_read_ahead_are_the_collections_documents_in_order_and_the_reader_stops_cleanly(
        store: MongoStore) -> None:
    import threading

    from drill.stores.mongodb.prefetch import documents_ahead

    store.seed(1000)
    collection = store.database()["notifications"]
    plain = list(collection.find())  # the oracle: pymongo's own cursor
    assert len(plain) > 202  # more than two of the server's first batches: the thread really reads ahead
    assert list(documents_ahead(collection)) == plain
    reader = documents_ahead(collection)
    assert [next(reader) for _ in range(5)] == plain[:5]
    reader.close()  # the caller leaves the loop early
    assert not [t for t in threading.enumerate() if t.name.startswith("drill-prefetch-")]


def test_a_server_that_stops_answering_while_documents_are_read_ahead_raises_in_the_reader() -> None:
    import pymongo

    from drill.stores.mongodb.prefetch import documents_ahead

    local = LocalMongoServer()
    local.start()
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(local.uri, serverSelectionTimeoutMS=2000)
        client["t"]["c"].insert_many([{"_id": i, "v": "x" * 1000} for i in range(3000)])
        reader = documents_ahead(client["t"]["c"])
        next(reader)
        local.stop()  # the server is gone while batches are still to come (it hands out ~100 documents each)
        with pytest.raises(pymongo.errors.PyMongoError):
            for _document in reader:
                pass
    finally:
        local.stop()


def test_a_fingerprint_hashed_in_worker_processes_is_the_one_hashed_in_process(
        store: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from drill import hash_workers
    from drill.stores.mongodb import store as store_module

    monkeypatch.setattr(store_module, "WORKER_CHUNK", 32 * 1024)  # many chunks, more than in flight at once
    store.seed(3000)
    in_process = store.fingerprint()
    with hash_workers.running():
        in_workers = store.fingerprint()
    assert in_workers.parts == in_process.parts
    # The oracle for the content: pymongo's own documents, hashed here (no read-ahead, no workers, no chunks).
    documents = list(store.database()["notifications"].find())
    total = sum(document_hash(d) for d in documents) % (1 << 64)
    assert in_workers.parts["notifications"].content == hashlib.sha256(f"{len(documents)}:{total}".encode()) \
        .hexdigest()[:32]
    raw = list(store.database()["notifications"].find_raw_batches())
    assert sum(len(b) for b in raw) > 8 * store_module.WORKER_CHUNK  # more chunks than hash_workers keeps in flight
    store.database()["users"].update_one({}, {"$set": {"score": -1.0}})
    with hash_workers.running():
        assert store.fingerprint().parts["users"].content != in_process.parts["users"].content
