"""A throwaway MongoDB-protocol server: temporary directory, free loopback port, removed afterwards.

Uses `mongod` when it is on PATH, else the `nx-27017` wire-protocol server (MongoDB protocol on
SQLite, from PyPI: pip install nx-27017), found next to the running Python first, then on PATH.
The server gets its own session so a Ctrl-C aimed at drill does not kill it behind drill's back.
Servers left behind by a killed drill (its pid is gone) are swept on the next provisioning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from drill.errors import ProvisionError
from drill.provision.processes import kill_recorded, mark_owned, pid_alive, start_on_free_port, sweep_stale

log = logging.getLogger(__name__)
PREFIX = "drill-mongo-"
SERVER_PID_FILE = "server.pid"
READY_TIMEOUT = 60.0
# Errors that only mean "not listening yet" while the server starts.
TRANSIENT = (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect, ConnectionRefusedError)


def find_server() -> tuple[str, Path]:
    """("mongod" | "nx-27017", path of the program); a clear error when neither is installed."""
    mongod = shutil.which("mongod")
    if mongod:
        return "mongod", Path(mongod)
    beside = Path(sys.executable).parent / "nx-27017"
    if beside.is_file() and os.access(beside, os.X_OK):
        return "nx-27017", beside
    found = shutil.which("nx-27017")
    if found:
        return "nx-27017", Path(found)
    raise ProvisionError("no MongoDB server to run a throwaway store: neither `mongod` on PATH nor the "
                         f"`nx-27017` wire-protocol server (looked in {beside.parent} and on PATH); "
                         "install one: pip install 'dr-drill[mongodb]' (it brings nx-27017), or install MongoDB's "
                         "mongod")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def sweep_stale_servers(tmp_root: Path | None = None) -> list[Path]:
    """Remove servers whose drill process is gone (a drill killed with SIGKILL leaves them)."""
    return sweep_stale(PREFIX, "MongoDB server", kill_recorded(SERVER_PID_FILE, _kill), tmp_root)


@dataclass
class LocalMongoServer:
    """Use as a context manager, or call start()/stop(); stop() is safe to call more than once."""

    root: Path | None = None
    port: int = 0
    program: str = ""
    path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> LocalMongoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / ("mongod.log" if self.program == "mongod" else "nx.log")

    def start(self) -> None:
        self.program, self.path = find_server()
        sweep_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        (self.root / "data").mkdir()
        try:
            self._start_server()
        except BaseException:
            self.stop()  # a failed start cleans up after itself and says why
            raise

    def _args(self) -> list[str]:
        assert self.root is not None and self.path is not None
        data = self.root / "data"
        if self.program == "mongod":
            return [str(self.path), "--dbpath", str(data), "--port", str(self.port), "--bind_ip", "127.0.0.1",
                    "--logpath", str(self.log_file), "--nounixsocket"]
        return [str(self.path), "--host", "127.0.0.1", "-p", str(self.port), "--data-dir", str(data),
                "--log-file", str(self.log_file), "--pid-file", str(self.root / "nx.pid")]

    def _start_server(self) -> None:
        start_on_free_port(self._start_on, lambda error: "in use" in error.lower(), cleanup=self._terminate)

    def _start_on(self, port: int) -> None:
        assert self.root is not None
        self.port = port
        with (self.root / "server.out").open("ab") as out:
            self._process = subprocess.Popen(self._args(), stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root)
        (self.root / SERVER_PID_FILE).write_text(str(self._process.pid))
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ProvisionError(f"{self.program} exited with code {self._process.returncode} on start-up "
                                     f"(port {self.port}); server log:\n{self._log_tail()}")
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
            try:
                client.admin.command("ping")
                return
            except TRANSIENT as exc:  # not listening yet
                last = exc
                time.sleep(0.1)
            finally:
                client.close()
        raise ProvisionError(f"{self.program} on port {self.port} accepted no connection within "
                             f"{READY_TIMEOUT:.0f}s: {last}\nserver log:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        assert self.root is not None
        text = []
        for path in (self.log_file, self.root / "server.out"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text[-lines:]) or "(no server log)"

    def _terminate(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                _kill(self._process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        self._terminate()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
