"""A throwaway Cloud Firestore emulator: temporary directory, free loopback port, removed afterwards.

The official emulator (Debian package `google-cloud-cli-firestore-emulator`) is a shell wrapper
that runs `java ... CloudFirestore start` as a child, without exec: stopping only the wrapper's pid
would leave the JVM running. So the wrapper is started in a session (process group) of its own and
the whole group is signalled on stop. Readiness is polled over HTTP (the emulator answers `Ok` on
`/`) with a timeout generous enough for a loaded 2-core machine (the JVM starts in ~2 s when idle).
Emulators left behind by a killed drill (its pid is gone) are swept on the next provisioning.

`$DRILL_FIRESTORE_EMULATOR` names another emulator wrapper; `$JAVA` (as the wrapper reads it) another java.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from drill.errors import ProvisionError
from drill.provision.processes import (
    kill_recorded,
    log_tail,
    mark_owned,
    pid_alive,
    read_pid,
    start_on_free_port,
    sweep_stale,
)

log = logging.getLogger(__name__)
PREFIX = "drill-firestore-"
DEFAULT_EMULATOR = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"
GROUP_FILE = "emulator.pgid"
READY_TIMEOUT = 120.0  # a JVM on a loaded 2-core machine can take tens of seconds
_INSTALL_HINT = ("the Cloud Firestore emulator comes with the Google Cloud CLI (Debian package "
                 "google-cloud-cli-firestore-emulator, or `gcloud components install cloud-firestore-emulator`); "
                 "set DRILL_FIRESTORE_EMULATOR to its cloud_firestore_emulator script if it lives elsewhere")


def emulator_program() -> Path:
    """The emulator's wrapper script, checked together with the java it needs."""
    explicit = os.environ.get("DRILL_FIRESTORE_EMULATOR")
    path = Path(explicit or DEFAULT_EMULATOR)
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"DRILL_FIRESTORE_EMULATOR={explicit}" if explicit else str(path)
        raise ProvisionError(f"no Cloud Firestore emulator at {where}: {_INSTALL_HINT}")
    jar = path.parent / "cloud-firestore-emulator.jar"
    if not jar.is_file():
        raise ProvisionError(f"the Cloud Firestore emulator's jar is missing ({jar}): {_INSTALL_HINT}")
    java = os.environ.get("JAVA") or shutil.which("java")
    if not java or not (Path(java).is_file() or shutil.which(java)):
        raise ProvisionError("the Cloud Firestore emulator needs Java 11 or newer and no `java` is on PATH: "
                             "install it (Debian: apt-get install openjdk-17-jre-headless)")
    return path


def emulator_version(program: Path) -> str:
    """The emulator's version from the package that installed it (the jar has no --version)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "google-cloud-cli-firestore-emulator"],
                              capture_output=True, text=True, timeout=15)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "unknown"


def _kill_group(pgid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Members that are zombies (exited, not yet reaped) do not count.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _port_taken(error: str) -> bool:
    return "address already in use" in error.lower() or "bindexception" in error.lower()


def sweep_stale_emulators(tmp_root: Path | None = None) -> list[Path]:
    """Stop and remove emulators whose drill process is gone (a drill killed with SIGKILL leaves them)."""
    return sweep_stale(PREFIX, "Firestore emulator", kill_recorded(GROUP_FILE, _kill_group), tmp_root)


@dataclass
class LocalFirestoreEmulator:
    """Use as a context manager, or call start()/stop(); stop() is safe to call more than once."""

    root: Path | None = None
    port: int = 0
    program: Path | None = None
    version: str = "unknown"
    started_in: float = 0.0  # seconds from spawning the wrapper to the first `Ok`
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> LocalFirestoreEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """host:port, as FIRESTORE_EMULATOR_HOST holds it."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "emulator.log"

    def start(self) -> None:
        self.program = emulator_program()
        self.version = emulator_version(self.program)
        sweep_stale_emulators()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        try:
            self._start_emulator()
        except BaseException:
            self.stop()  # a failed start cleans up after itself and says why
            raise

    def _start_emulator(self) -> None:
        start_on_free_port(self._start_on, _port_taken, cleanup=self._terminate)

    def _start_on(self, port: int) -> None:
        assert self.root is not None and self.program is not None
        self.port = port
        began = time.monotonic()
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                [str(self.program), "start", "--host=127.0.0.1", f"--port={self.port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.root)
        (self.root / GROUP_FILE).write_text(str(self._process.pid))  # session leader: pgid == pid
        self._wait_ready()
        self.started_in = time.monotonic() - began

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        last: Exception | str | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ProvisionError(f"the Firestore emulator exited with code {self._process.returncode} on "
                                     f"start-up (port {self.port}); emulator log:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=2) as response:
                    body = response.read(64)
                if response.status == 200 and body.strip() == b"Ok":
                    return
                last = f"HTTP {response.status} {body!r}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:  # not listening yet
                last = exc
            time.sleep(0.1)
        raise ProvisionError(f"the Firestore emulator on port {self.port} was not ready within "
                             f"{READY_TIMEOUT:.0f}s (last: {last}); emulator log:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return log_tail(self.log_file, 40, missing="(no emulator log)", empty="(empty emulator log)")

    def _terminate(self) -> None:
        if self._process is not None:
            _kill_group(self._process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        self._terminate()
        if self.root is not None:
            pgid = read_pid(self.root / GROUP_FILE)  # also when this object did not start it (sweep, re-entry)
            if pgid is not None and pid_alive(pgid):
                _kill_group(pgid)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
