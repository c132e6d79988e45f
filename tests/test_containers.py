"""provision = "container" on a real Docker engine: drills pass, start-up failures carry the logs,
nothing is left behind (also without testcontainers' reaper, on Ctrl-C and after a killed drill),
and a missing engine is a clear error.

The engine and the local images come from the `docker_engine` session fixture (tests/docker_engine.py:
.ci/docker-engine and .ci/docker-images); testcontainers runs with TESTCONTAINERS_RYUK_DISABLED=true
(Ryuk's image cannot be pulled here), so every removal seen here is drill's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.container import (
    HOST_LABEL,
    ID_LABEL,
    OWNER_LABEL,
    Container,
    ContainerSpec,
    docker_client,
    sweep_stale,
)
from drill.provision.factory import provision
from tests.conftest import (
    REPO,
    DrillRun,
    WaitingDrill,
    newest_results,
    run_drill,
    start_paused_drill,
    start_waiting_drill,
)
from tests.docker_engine import HELPER_IMAGE, MONGO_IMAGE, POSTGRES_IMAGE
from tests.live_servers import secrets_in, secrets_in_files

pytestmark = pytest.mark.usefixtures("docker_engine")


def _left_by_drill(client: Any) -> list[str]:
    containers = [f"container {c.name}" for c in client.containers.list(all=True, filters={"label": OWNER_LABEL})]
    volumes = [f"volume {v.name}" for v in client.volumes.list(filters={"label": OWNER_LABEL})]
    return containers + volumes


def _drills_copy(tmp_path: Path) -> Path:
    root = tmp_path / "docker-drills"
    shutil.copytree(REPO / "docker-drills", root, ignore=shutil.ignore_patterns("reports", "backups"))
    return root


def _container_password(client: Any) -> str:
    """The POSTGRES_PASSWORD drill gave its PostgreSQL container, read from the engine (drill never shows it)."""
    for container in client.containers.list(filters={"label": OWNER_LABEL}):
        for variable in container.attrs["Config"]["Env"] or []:
            if variable.startswith("POSTGRES_PASSWORD="):
                return str(variable.split("=", 1)[1])
    raise AssertionError("no drill PostgreSQL container with a POSTGRES_PASSWORD is running")


def test_container_drills_pass_and_leave_nothing(tmp_path: Path) -> None:
    root = _drills_copy(tmp_path)
    # Held right after the PostgreSQL disaster, the test reads the container's password from the engine; then
    # every byte of everything the run wrote (results, report.html, junit.xml, ...) and said is searched for it.
    paused = start_paused_drill(root, "disaster:userdb", "run", "--profile", "local-images", timeout=600)
    password = _container_password(docker_client())
    output = paused.finish(timeout=900)
    run = DrillRun(paused.proc.returncode, output, "", newest_results(root))
    assert run.code == 0, run.output
    assert run.results is not None and run.results["status"] == "passed"
    assert len(password) >= 16 and secrets_in(output, password) == []
    written = [p for p in root.rglob("*") if p.is_file()]
    assert {"results.json", "report.html", "junit.xml"} <= {p.name for p in written}
    assert secrets_in_files(root, password) == {}
    pg = run.scenario("The user database in a container is restored from its latest backup")
    location = pg["evidence"]["stores"]["userdb"]["location"]
    assert location.startswith("container drill-") and POSTGRES_IMAGE in location, location
    assert pg["evidence"]["fingerprints"]["userdb"]["differences"] == []
    cache = run.scenario("The cache in a container is restored from its latest RDB snapshot")
    assert "drill-local/redis:7" in cache["evidence"]["stores"]["cache"]["location"]
    assert cache["evidence"]["fingerprints"]["cache"]["before"]["total"] == 1200
    sessions = run.scenario("The session store in a container is restored from its RDB snapshot and AOF folder")
    assert [b["format"] for b in sessions["evidence"]["backups"]] == ["redis-rdb+aof"]
    assert sessions["evidence"]["fingerprints"]["sessions"]["differences"] == []
    volume = run.scenario("The application volume is restored from its latest backup")
    assert volume["status"] == "passed"
    assert _left_by_drill(docker_client()) == []


def test_no_engine_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    root = _drills_copy(tmp_path)
    run = run_drill(root, "run", "--profile", "local-images",
                    env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}, timeout=300)
    assert run.code != 0
    assert f"no Docker engine is reachable at unix://{tmp_path}/no-engine.sock" in run.output, run.output
    assert "Traceback" not in run.output, run.output


def test_a_container_that_exits_fails_with_its_logs_and_is_removed() -> None:
    cleanup = CleanupStack()
    spec = ContainerSpec(image=HELPER_IMAGE, what="test server",
                         command=["sh", "-c", "echo boom-marker-4711 >&2; exit 3"])
    container = Container(spec, cleanup)

    def never_ready() -> None:
        raise ConnectionError("not yet")

    with pytest.raises(ProvisionError) as caught:
        container.start(never_ready, (ConnectionError,))
    message = str(caught.value)
    assert "the test server (image drill-local/alpine) exited with code 3 before it was ready" in message
    assert "boom-marker-4711" in message  # the container's logs are attached
    client = docker_client()
    assert client.containers.list(all=True, filters={"label": f"{ID_LABEL}={container.key}"}) != []
    assert cleanup.run() == []
    assert client.containers.list(all=True, filters={"label": f"{ID_LABEL}={container.key}"}) == []


def test_a_container_never_ready_times_out_with_its_logs() -> None:
    cleanup = CleanupStack()
    spec = ContainerSpec(image=HELPER_IMAGE, what="slow server", ready_timeout=2,
                         command=["sh", "-c", "echo still-starting-0815; exec sleep 300"])
    container = Container(spec, cleanup)
    started = time.monotonic()

    def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    try:
        with pytest.raises(ProvisionError) as caught:
            container.start(refused, (ConnectionRefusedError,))
    finally:
        cleanup.run()
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "the slow server (image drill-local/alpine) was not ready within 2s: connection refused" in message
    assert "still-starting-0815" in message
    assert docker_client().containers.list(all=True, filters={"label": f"{ID_LABEL}={container.key}"}) == []


def test_an_image_the_engine_cannot_get_is_named() -> None:
    cleanup = CleanupStack()
    config = StoreConfig(name="userdb", kind="postgres", provision="container", image="drill-local/absent:1")
    with pytest.raises(ProvisionError) as caught:
        provision(config, cleanup)
    cleanup.run()
    assert "image 'drill-local/absent:1' for the PostgreSQL container of 'userdb' is not on the engine" \
        in str(caught.value)
    assert "`image = ...` in drill.toml" in str(caught.value)


def test_a_kind_without_container_provisioning_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from drill.provision import factory

    # A kind module that has provision_local/provision_live but no provision_container (e.g. a cloud store).
    module = types.SimpleNamespace(provision_local=None, provision_live=None)
    monkeypatch.setattr(factory, "_kind_module", lambda kind: module)
    with pytest.raises(ProvisionError, match='provision = "container" is not available for gcs stores'):
        provision(StoreConfig(name="bucket", kind="gcs", provision="container"), CleanupStack())


def test_mongodb_in_a_container_round_trip(tmp_path: Path) -> None:
    from drill.fingerprint import compare

    cleanup = CleanupStack()
    try:
        store = provision(StoreConfig(name="notifydb", kind="mongodb", provision="container", image=MONGO_IMAGE),
                          cleanup)
        assert store.describe()["location"].startswith("container drill-")
        store.seed(200)
        before = store.fingerprint()
        artifact = store.backup(tmp_path)
        store.lose()
        assert store.count() == 0
        store.restore(artifact)
        assert compare(before, store.fingerprint()) == []
    finally:
        assert cleanup.run() == []
    assert _left_by_drill(docker_client()) == []


def test_leftovers_of_a_killed_drill_are_swept(tmp_path: Path) -> None:
    client = docker_client()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = {OWNER_LABEL: str(dead.pid), HOST_LABEL: socket.gethostname()}
    alive = {OWNER_LABEL: "1", HOST_LABEL: socket.gethostname()}  # pid 1 is alive: not stale
    old = client.containers.create(HELPER_IMAGE, ["sleep", "300"], labels=stale, network_mode="none")
    volume = client.volumes.create(name=f"drill-stale-{dead.pid}", labels=stale)
    kept = client.containers.create(HELPER_IMAGE, ["sleep", "300"], labels=alive, network_mode="none")
    try:
        removed = sweep_stale(client)
        assert f"container {old.name}" in removed and f"volume {volume.name}" in removed
        names = [c.name for c in client.containers.list(all=True)]
        assert old.name not in names and kept.name in names
    finally:
        kept.remove(force=True)
        for leftover in client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={dead.pid}"}):
            leftover.remove(force=True)


LONG_FEATURE = '''Feature: long container drill
  Scenario: a container drill interrupted while it waits
    Given the PostgreSQL store "userdb"
    And "userdb" is seeded with 100 rows
    When 10 minutes pass
    And "userdb" is lost
'''


def _long_drill(tmp_path: Path) -> WaitingDrill:
    """The container drills' project with only LONG_FEATURE, run until it waits (its container is up)."""
    root = _drills_copy(tmp_path)
    for feature in (root / "features").glob("*.feature"):
        feature.unlink()
    (root / "features" / "long.feature").write_text(LONG_FEATURE)
    return start_waiting_drill(root, "run", "--profile", "local-images", timeout=300)


def test_ctrl_c_removes_the_container_without_the_reaper(tmp_path: Path) -> None:
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    drill = _long_drill(tmp_path)
    client = docker_client()
    mine = client.containers.list(filters={"label": f"{OWNER_LABEL}={drill.proc.pid}"})
    assert len(mine) == 1 and mine[0].status == "running"
    output = drill.stop(signal.SIGINT, timeout=120)
    assert drill.proc.returncode == 130, output
    assert client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={drill.proc.pid}"}) == []


def test_a_reaper_that_cannot_run_is_done_without(tmp_path: Path) -> None:
    """Ryuk enabled but its image cannot be pulled here: drill warns, goes on, and still removes everything."""
    root = _drills_copy(tmp_path)
    run = run_drill(root, "run", "--profile", "local-images", "features/redis_container.feature",
                    env={"TESTCONTAINERS_RYUK_DISABLED": "false"}, timeout=600)
    assert run.code == 0, run.output
    assert run.scenario("The cache in a container is restored from its latest RDB snapshot")["status"] == "passed"
    assert _left_by_drill(docker_client()) == []


def test_the_container_drills_are_valid_without_an_engine() -> None:
    run = run_drill(REPO / "docker-drills", "check", "--profile", "local-images")
    assert run.code == 0, run.output
    assert "6 scenario(s)" in run.stdout


def test_a_killed_drill_leaves_a_container_that_the_next_one_sweeps(tmp_path: Path) -> None:
    drill = _long_drill(tmp_path)
    drill.kill(timeout=60)  # SIGKILL: drill's clean-up cannot run
    client = docker_client()
    label = {"label": f"{OWNER_LABEL}={drill.proc.pid}"}
    [left] = client.containers.list(all=True, filters=label)
    try:
        removed = sweep_stale(client)  # what every container or volume provisioning does first
        assert f"container {left.name}" in removed
        assert client.containers.list(all=True, filters=label) == []
    finally:
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True)


def test_the_postgres_container_takes_the_password_drill_passes() -> None:
    """The image honours POSTGRES_PASSWORD as the official one does: the right one logs in, a wrong one is refused."""
    import psycopg

    from drill.stores.postgres import PostgresStore

    cleanup = CleanupStack()
    try:
        store = provision(StoreConfig(name="userdb", kind="postgres", provision="container", image=POSTGRES_IMAGE),
                          cleanup)
        assert isinstance(store, PostgresStore)
        server = store.server
        assert server.password and server.password not in server.description
        assert server.database_exists("userdb")  # POSTGRES_DB
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password="wrong", dbname="userdb",
                            connect_timeout=10)
    finally:
        assert cleanup.run() == []
