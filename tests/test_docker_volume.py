"""Docker volume stores on a real Docker engine: runbook-style tar.gz backups through a helper container,
restores into the same or a new volume, planted faults (a changed file, a missing file, a changed mode)
that fail by name, corrupt backups rejected before the target is touched, and the containers that use
the volume stopped and started around backup and restore.

The engine and images come from the `docker_engine` session fixture (tests/docker_engine.py).
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import BackupError, ConfigError, SafetyError
from drill.fingerprint import compare
from drill.provision.container import OWNER_LABEL, docker_client, owner_labels
from drill.provision.factory import provision
from drill.stores.base import BackupArtifact
from drill.stores.volume import VolumeStore
from tests.conftest import plugin_env, plugin_project, run_drill
from tests.docker_engine import HELPER_IMAGE

pytestmark = pytest.mark.usefixtures("docker_engine")

FAULTS_PLUGIN = '''
from pytest_bdd import parsers, when

from drill.scenario import DrillScenario


@when(parsers.parse('the file "{path}" in "{store}" is overwritten'))
def overwrite(drill: DrillScenario, path: str, store: str) -> None:
    drill.store(store).write_file(path, b"planted by the test")


@when(parsers.parse('the file "{path}" in "{store}" is removed'))
def remove(drill: DrillScenario, path: str, store: str) -> None:
    drill.store(store).remove_file(path)


@when(parsers.parse('the mode of "{path}" in "{store}" is set to {mode}'))
def chmod(drill: DrillScenario, path: str, store: str, mode: str) -> None:
    drill.store(store).chmod(path, int(mode, 8))
'''

SCENARIO = '''
  Scenario: {name}
    Given the Docker volume store "appdata"
    And "appdata" is seeded with 90 files
    And a backup of "appdata" is taken
    When "appdata" is lost
    And "appdata" is restored from its latest backup
    {fault}
    Then "appdata" matches its state at the backup
'''

# File i of the seed is seed/dNN/file-<i>.txt (.bin when i % 5 == 4) with NN = i % 10, mode 0644/0600/0755
# for i % 3 == 0/1/2.
FAULTS = {
    "faithful restore": ("", None),
    "a changed file": ('And the file "seed/d03/file-000003.txt" in "appdata" is overwritten',
                       "directory seed: seed/d03/file-000003.txt changed (was: file, mode 0644, owner 0:0, 87 bytes"),
    "a missing file": ('And the file "seed/d07/file-000017.txt" in "appdata" is removed',
                       "directory seed: seed/d07/file-000017.txt missing (was: file, mode 0755"),
    "a changed mode": ('And the mode of "seed/d06/file-000006.txt" in "appdata" is set to 0640',
                       "directory seed: seed/d06/file-000006.txt changed (was: file, mode 0644"),
}
COUNT_MESSAGE = {"a missing file": "directory seed: 90 files at the backup, 89 now (1 missing)"}

EXTERNAL = '''
  Scenario: a runbook backup made with tar -czf -C /volume . is restored
    Given the Docker volume store "appdata"
    And the latest backup of "appdata" in "volume-backups/appdata_*.tar.gz"
    When "appdata" is restored from its latest backup
    Then "appdata" holds 3 files
    And "appdata" holds 2 files in "conf"
'''


def _project(root: Path, feature: str) -> Path:
    return plugin_project(root, feature, FAULTS_PLUGIN, name="volume.feature", toml=f'''
[stores.appdata]
kind = "volume"
provision = "container"
image = "{HELPER_IMAGE}"
''')


def _runbook_backup(path: Path) -> None:
    """What the runbook's `tar -czf backup.tar.gz -C /volume .` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data, mode in (("./conf/app.ini", b"[app]\nmode = prod\n", 0o640),
                                 ("./conf/secrets.env", b"TOKEN=abc\n", 0o600),
                                 ("./README", b"hello\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: dict[str, str]) -> Any:
    root = _project(tmp_path_factory.mktemp("volume-faults"), "Feature: planted volume faults\n" + "".join(
        SCENARIO.format(name=name, fault=fault) for name, (fault, _) in FAULTS.items()) + EXTERNAL)
    _runbook_backup(root / "volume-backups" / "appdata_20240115_120000.tar.gz")
    return run_drill(root, "run", env=plugin_env(root), timeout=900)


def test_faithful_restore_passes_with_a_runbook_compatible_backup(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["appdata"]
    assert prints["differences"] == [] and prints["before"]["total"] == 90
    schema = prints["before"]["parts"]["seed"]["schema"]
    assert schema["seed/d01/file-000001.txt"].startswith("file, mode 0600, owner 0:0, ")
    [backup] = scenario["evidence"]["backups"]
    assert backup["format"] == "tar.gz" and len(backup["sha256"]) == 64
    assert backup["tool_versions"]["helper_image"] == HELPER_IMAGE


@pytest.mark.parametrize("name", [n for n, (_, msg) in FAULTS.items() if msg])
def test_planted_fault_fails_with_a_message_naming_the_file(fault_run: Any, name: str) -> None:
    expected = FAULTS[name][1]
    assert expected is not None
    fault_run.failed_verification(name, "appdata", expected, COUNT_MESSAGE.get(name, ""))


def test_a_runbook_backup_is_restored(fault_run: Any) -> None:
    scenario = fault_run.scenario("a runbook backup made with tar -czf -C /volume . is restored")
    assert scenario["status"] == "passed", fault_run.output


def test_the_fault_run_fails_and_leaves_nothing(fault_run: Any) -> None:
    assert fault_run.code == 1
    client = docker_client()
    assert client.volumes.list(filters={"label": OWNER_LABEL}) == []
    assert client.containers.list(all=True, filters={"label": OWNER_LABEL}) == []


@pytest.fixture
def volume_store() -> Any:
    cleanup = CleanupStack()
    store = provision(StoreConfig(name="appdata", kind="volume", provision="container", image=HELPER_IMAGE), cleanup)
    assert isinstance(store, VolumeStore)
    yield store
    assert cleanup.run() == []
    assert docker_client().volumes.list(filters={"name": store.volume}) == []


def test_a_corrupt_backup_is_rejected_before_the_volume_is_touched(volume_store: VolumeStore, tmp_path: Path) -> None:
    volume_store.seed(40)
    artifact = volume_store.backup(tmp_path)
    volume_store.write_file("after-backup.txt", b"written after the backup")
    before = volume_store.fingerprint()
    data = bytearray(artifact.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"is corrupt: sha256 \w+ does not match"):
        volume_store.restore(artifact)
    unchecked = BackupArtifact(**{**artifact.__dict__, "sha256": None})
    with pytest.raises(BackupError, match=re.escape("is not a readable tar.gz")):
        volume_store.restore(unchecked)
    assert compare(before, volume_store.fingerprint()) == []  # untouched


@pytest.mark.parametrize(("name", "kind", "target", "message"), [
    ("../escape.txt", tarfile.REGTYPE, "", "holds an entry outside the volume: '../escape.txt'"),
    ("/etc/escape.txt", tarfile.REGTYPE, "", "holds an entry outside the volume: '/etc/escape.txt'"),
    ("./a/up", tarfile.SYMTYPE, "../../etc", "a symbolic link './a/up' -> '../../etc', which leaves the volume"),
    ("./abs", tarfile.SYMTYPE, "/etc/shadow", "a symbolic link './abs' -> '/etc/shadow', which leaves the volume"),
    ("./hard", tarfile.LNKTYPE, "../etc/passwd", "a hard link './hard' to '../etc/passwd', outside the volume"),
])
def test_an_entry_or_link_outside_the_volume_is_rejected(volume_store: VolumeStore, tmp_path: Path, name: str,
                                                         kind: bytes, target: str, message: str) -> None:
    volume_store.seed(5)
    before = volume_store.fingerprint()
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        fine = tarfile.TarInfo("./a/inside.txt")  # a link that stays inside is fine: it is not what is refused
        fine.size = 1
        archive.addfile(fine, io.BytesIO(b"x"))
        ok_link = tarfile.TarInfo("./a/sibling")
        ok_link.type, ok_link.linkname = tarfile.SYMTYPE, "../a/inside.txt"
        archive.addfile(ok_link)
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        info.size = 1 if kind == tarfile.REGTYPE else 0
        archive.addfile(info, io.BytesIO(b"x") if kind == tarfile.REGTYPE else None)
    artifact = BackupArtifact(id="evil", store="appdata", kind="volume", format="external", path=path, sha256=None,
                              size=path.stat().st_size, created_at=0, consistent_at=0)
    with pytest.raises(BackupError, match=re.escape(message)):
        volume_store.restore(artifact)
    assert compare(before, volume_store.fingerprint()) == []  # the helper extracted nothing


def _volume_listing(client: Any, volume: str) -> list[str]:
    """Every path in the volume, listed by a helper container (an oracle that is not drill's code)."""
    output = client.containers.run(HELPER_IMAGE, ["sh", "-c", "cd /data && find . -mindepth 1"], remove=True,
                                   network_mode="none", volumes={volume: {"bind": "/data", "mode": "ro"}})
    return sorted(output.decode().split())


def test_containers_using_the_volume_are_stopped_and_started_around_backup_and_restore(tmp_path: Path) -> None:
    client = docker_client()
    cleanup = CleanupStack()
    base = StoreConfig(name="appdata", kind="volume", provision="container", image=HELPER_IMAGE)
    store = provision(base, cleanup)
    assert isinstance(store, VolumeStore)
    script = "trap 'exit 0' TERM; date +%s%N >> /data/started-at; sleep 3600 & wait"
    service = client.containers.run(
        HELPER_IMAGE, ["sh", "-c", script], detach=True, labels=owner_labels(), network_mode="none",
        volumes={store.volume: {"bind": "/data", "mode": "rw"}})
    try:
        store.config = StoreConfig(**{**base.__dict__, "stop_containers": (service.name,)})
        store.seed(12)
        said: list[str] = []
        artifact = store.backup(tmp_path, said.append)
        assert f"stopping container {service.name} (it uses volume {store.volume})" in said
        assert f"starting container {service.name} again" in said
        service.reload()
        assert service.status == "running"
        expected = artifact.fingerprint
        assert expected is not None
        # The service restarted after the backup and wrote a second line; the backup holds one.
        seeded = _volume_listing(client, store.volume)
        assert len(seeded) > 12 and "./started-at" in seeded, seeded
        store.lose()  # a volume a container refers to cannot be removed: drill empties it
        # Read by the engine itself, not by drill: nothing of the seed is left; at most the service's own file,
        # which it writes again if it was started after the loss.
        assert set(_volume_listing(client, store.volume)) <= {"./started-at"}
        said.clear()
        store.restore(artifact, progress=said.append)
        assert said[0] == f"stopping container {service.name} (it uses volume {store.volume})"
        assert said[-1] == f"starting container {service.name} again"
        service.reload()
        assert service.status == "running"
        after = store.fingerprint()
        differences = compare(expected, after)
        # Only the service's own file moved on (it appends a line each time it starts).
        assert {d.message.split(" changed")[0].split(" content")[0] for d in differences} == \
            {"directory .: started-at", "directory .:"}, differences
    finally:
        service.remove(force=True)
        assert cleanup.run() == []


def test_a_live_volume_needs_destructive_and_a_name(tmp_path: Path) -> None:
    client = docker_client()
    volume = client.volumes.create(name="drill-test-live-volume", labels=owner_labels())
    cleanup = CleanupStack()
    try:
        store = provision(StoreConfig(name="prod", kind="volume", provision="live", volume=volume.name,
                                      image=HELPER_IMAGE), cleanup)
        with pytest.raises(SafetyError, match="refusing to lose live store 'prod'"):
            store.lose()
        with pytest.raises(SafetyError, match="does not allow writes"):
            store.seed(3)
    finally:
        cleanup.run()
        volume.remove(force=True)
    (tmp_path / "drill.toml").write_text('[stores.prod]\nkind = "volume"\nprovision = "live"\n')
    from drill.config import load_config

    with pytest.raises(ConfigError, match="a live Docker volume store needs `volume`"):
        load_config(tmp_path / "drill.toml")
