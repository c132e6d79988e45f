"""In place means in place, for every kind that can be live: MongoDB (nx-27017), GCS (fake-gcs-server),
Firestore (the official emulator) and a Docker volume. PostgreSQL and Redis are in test_live_safety.py.

Each server (or volume) is made by the test itself, outside drill, filled with the kind's own client,
and handed to drill as a live store with `destructive = true`. The quarterly drill (backup, lose,
restore, matches) must pass and leave the live store holding what it held before, by the kind's
drill-free oracle (tests/oracles.py, or the volume's files read by a container of the test's own).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_drill
from tests.docker_engine import HELPER_IMAGE
from tests.live_servers import LiveFirestore, LiveGcs, LiveMongo
from tests.oracles import firestore_state, gcs_state, mongo_state

QUARTERLY = '''Feature: quarterly drill
  Scenario: the store is lost and restored in place
    Given the {kind} store "{store}"
    And a backup of "{store}" is taken
    When "{store}" is lost
    And "{store}" is restored from its latest backup
    Then "{store}" matches its state at the backup
'''


def _run(root: Path, kind: str, store: str, toml: str, env: dict[str, str]) -> dict[str, Any]:
    (root / "features").mkdir()
    (root / "features" / "quarterly.feature").write_text(QUARTERLY.format(kind=kind, store=store))
    (root / "drill.toml").write_text(f"[stores.{store}]\n{toml}destructive = true\n")
    run = run_drill(root, "run", env=env)
    assert run.code == 0, run.output
    scenario = run.scenario("the store is lost and restored in place")
    [check] = scenario["live_stores"]
    assert check["store"] == store and check["outcome"] == "matches the backup restored into it", check
    assert check["changes"][0] == "lost" and check["verified"] is True
    assert not (root / "backups" / ".drill-safety" / store).exists()
    return scenario


def test_a_live_mongodb_database_is_restored_in_place(tmp_path: Path) -> None:
    with LiveMongo() as live:
        client: Any = live.client()
        db = client["notify"]
        db.messages.insert_many([{"n": i, "text": f"message {i}", "score": i / 3, "tags": ["a", "b"][: i % 3]}
                                 for i in range(300)])
        db.messages.create_index("n", unique=True)
        db.users.insert_many([{"_id": f"user-{i}", "age": i} for i in range(40)])
        before = mongo_state(client, "notify")
        _run(tmp_path, "MongoDB", "notify", 'kind = "mongodb"\nprovision = "live"\nurl_env = "NOTIFY_URL"\n',
             {"NOTIFY_URL": live.url("notify")})
        assert mongo_state(client, "notify") == before


def test_a_live_gcs_bucket_is_restored_in_place(tmp_path: Path) -> None:
    with LiveGcs() as live:
        client: Any = live.client()
        bucket = client.bucket("prod-assets")
        bucket.versioning_enabled = True
        client.create_bucket(bucket)
        for i in range(60):
            blob = bucket.blob(f"images/{i:03d}.bin")
            blob.metadata = {"owner": f"team-{i % 4}"}
            blob.upload_from_string(bytes([i % 251]) * (100 + i), content_type="application/octet-stream")
        bucket.blob("docs/readme.txt").upload_from_string("hello", content_type="text/plain")
        before = gcs_state(client, "prod-assets")
        _run(tmp_path, "GCS", "assets", 'kind = "gcs"\nprovision = "live"\nurl_env = "ASSETS_GCS"\n'
                                        'bucket = "prod-assets"\n',
             {"ASSETS_GCS": f"{live.endpoint}?project=test-project"})
        assert gcs_state(client, "prod-assets") == before


def test_a_live_firestore_project_is_restored_in_place(tmp_path: Path) -> None:
    with LiveFirestore(project="live-project") as live:
        client: Any = live.client()
        for i in range(50):
            client.collection("users").document(f"u{i}").set(
                {"n": i, "ratio": i / 7, "joined": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "tags": ["x", i]})
        client.collection("users").document("u1").collection("orders").document("o1").set({"total": 12.5})
        before = firestore_state(client)
        _run(tmp_path, "Firestore", "prod", 'kind = "firestore"\nprovision = "live"\nurl_env = "PROD_FS"\n',
             {"PROD_FS": f"http://{live.host}/live-project"})
        assert firestore_state(client) == before


@pytest.mark.usefixtures("docker_engine")
def test_a_live_docker_volume_is_restored_in_place(tmp_path: Path) -> None:
    import docker

    client = docker.from_env()
    volume = client.volumes.create(name=f"drilltest-live-{tmp_path.name[-8:]}".lower())

    def files() -> str:
        """Every file's path, mode, size and md5, read by the test's own container."""
        out = client.containers.run(HELPER_IMAGE, ["sh", "-c", "cd /data && find . -type f | sort | "
                                                   "while read f; do stat -c '%n %a %s' \"$f\"; md5sum \"$f\"; done"],
                                    volumes={volume.name: {"bind": "/data", "mode": "ro"}}, remove=True)
        return bytes(out).decode()

    try:
        fill = ("mkdir -p /data/conf /data/logs && for i in $(seq 1 30); do echo line $i > /data/logs/$i.log; done "
                "&& printf 'mode=prod\\n' > /data/conf/app.ini && chmod 600 /data/conf/app.ini")
        client.containers.run(HELPER_IMAGE, ["sh", "-c", fill], volumes={volume.name: {"bind": "/data"}}, remove=True)
        before = files()
        assert "./conf/app.ini 600" in before
        _run(tmp_path, "Docker volume", "appdata",
             f'kind = "volume"\nprovision = "live"\nvolume = "{volume.name}"\nimage = "{HELPER_IMAGE}"\n', {})
        assert files() == before
    finally:
        volume.remove(force=True)
