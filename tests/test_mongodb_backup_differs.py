"""A live MongoDB backup that differs from the store is never accepted silently (issue scale21/3).

MongoDB without a replica set has no snapshot: drill fingerprints the store, dumps it, and fingerprints the
dump. A difference used to be one progress line, and the artifact's fingerprint was the dump's, so
"matches its state at the backup" only proved restore == dump. Now the store is read again: a collection
the dump lost while nothing wrote to it fails the backup naming it; a difference a writer explains is kept
on the backup's evidence (results.json, report.html). The store is nx-27017 started by the test; the faults
are planted in the dump by a drill plugin of the test's own (faults.py, loaded by `[drill] plugins`) that
wraps the dump, and the oracle is pymongo's count_documents on the live store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DrillRun, plugin_env, plugin_project, run_drill
from tests.live_servers import LiveMongo

# Wraps the streamed dump (mongodump is not on this machine): for database `lossy` it drops the last document of
# notifications.bson after the dump, as a faulty disk or dump tool would; for database `busy` a writer of the
# test's own inserts a document into the live store just before the dump reads it.
PLUGIN = '''
import gzip
import os
import struct

import pymongo

from drill.stores.mongodb import transfers

_original = transfers.MongoTransfers._stream_dump


def _drop_last_document(path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    offset, last = 0, 0
    while offset < len(data):
        last = offset
        offset += struct.unpack_from("<i", data, offset)[0]
    with opener(path, "wb") as handle:
        handle.write(data[:last])


def _stream_dump(self, partial, progress):
    if self.database_name == "busy":
        pymongo.MongoClient(os.environ["BUSY_URL"])["busy"]["notifications"].insert_one({"n": "written meanwhile"})
    _original(self, partial, progress)
    if self.database_name == "lossy":
        [dumped] = (partial / "lossy").glob("notifications.bson*")
        _drop_last_document(dumped)


transfers.MongoTransfers._stream_dump = _stream_dump
'''

TOML = '''
[stores.lossy]
kind = "mongodb"
provision = "live"
url_env = "LOSSY_URL"

[stores.busy]
kind = "mongodb"
provision = "live"
url_env = "BUSY_URL"
'''

FEATURE = '''Feature: a live MongoDB backup that differs from the store
  Scenario: the dump loses a document nobody deleted
    Given the MongoDB store "lossy"
    And a backup of "lossy" is taken

  Scenario: a writer inserts a document during the dump
    Given the MongoDB store "busy"
    And a backup of "busy" is taken
    Then "busy" holds 151 documents in "notifications"
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DrillRun, dict[str, int], Path]]:
    project = plugin_project(tmp_path_factory.mktemp("differs"), FEATURE, PLUGIN, name="differs.feature", toml=TOML)
    with LiveMongo() as mongo:
        client: Any = mongo.client()
        for database in ("lossy", "busy"):
            client[database]["notifications"].insert_many([{"n": i, "to": f"user-{i % 7}"} for i in range(150)])
            client[database]["users"].insert_many([{"n": i} for i in range(20)])
        done = run_drill(project, "run", env=plugin_env(project, {"LOSSY_URL": mongo.url("lossy"),
                                                                  "BUSY_URL": mongo.url("busy")}), timeout=600)
        counts = {f"{db}.{coll}": client[db][coll].count_documents({})
                  for db in ("lossy", "busy") for coll in ("notifications", "users")}
    yield done, counts, project


def test_a_dump_that_lost_a_document_nobody_deleted_fails_the_backup_naming_it(
        run: tuple[DrillRun, dict[str, int], Path]) -> None:
    done, counts, _project = run
    # The oracle: the live store still holds every document (drill only read it); the dump lost one.
    assert counts["lossy.notifications"] == 150 and counts["lossy.users"] == 20
    scenario = done.scenario("the dump loses a document nobody deleted")
    assert scenario["status"] == "failed", done.output
    failing = [s["text"] for s in scenario["steps"] if s["status"] == "failed"]
    assert failing == ['a backup of "lossy" is taken'], failing
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "the backup of 'lossy' does not hold what the store held" in message, message
    assert (f"collection notifications: {counts['lossy.notifications']} documents in the store right before the "
            f"dump, {counts['lossy.notifications'] - 1} documents in the dump; the store did not change during the "
            f"dump") in message, message
    assert "users" not in message  # the collection the dump kept whole is not named
    assert scenario["evidence"].get("backups", []) == []  # a refused backup is no backup
    assert done.code != 0


def test_a_difference_a_writer_explains_is_kept_on_the_backups_evidence(
        run: tuple[DrillRun, dict[str, int], Path]) -> None:
    done, counts, project = run
    assert counts["busy.notifications"] == 151 and counts["busy.users"] == 20  # the test's writer inserted one
    scenario = done.scenario("a writer inserts a document during the dump")
    assert scenario["status"] == "passed", done.output
    [backup] = scenario["evidence"]["backups"]
    assert backup["differs_from_store"] == [
        "collection notifications: 150 documents in the store right before the dump, 151 documents in the dump; "
        "the store changed during the dump (a writer), the backup holds what it read"]
    [report] = project.glob("reports/*/report.html")
    html = report.read_text()
    assert "differs from the store right before it:" in html
    assert "collection notifications: 150 documents in the store right before the dump, 151 documents" in html
