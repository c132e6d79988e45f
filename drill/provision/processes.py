"""What every throwaway local server shares: a free loopback port, liveness of a pid, and the sweep
of servers a killed drill left behind.

Each throwaway server lives in a temporary directory `<prefix>XXXX` holding `drill-owner.pid`, the
pid of the drill that made it. When that drill is gone (killed with SIGKILL, so its clean-up never
ran), the next provisioning of the same kind stops the leftover server and deletes the directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from drill.errors import ProvisionError

log = logging.getLogger(__name__)
OWNER_FILE = "drill-owner.pid"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A server that is not our child (daemonized) may stay a zombie after it exits until init reaps it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL the process and wait (up to `timeout` seconds) until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def start_on_free_port(attempt: Callable[[int], None], port_taken: Callable[[str], bool],
                       cleanup: Callable[[], None] | None = None, tries: int = 3) -> None:
    """Run `attempt(port)` on a free loopback port until it succeeds.

    Another process may take the port between probe and bind: a ProvisionError whose message
    `port_taken` recognises is retried on a new port (up to `tries` times); any other is raised.
    `cleanup()` runs after every failed attempt.
    """
    last_error = ""
    for _attempt in range(tries):
        try:
            attempt(free_port())
            return
        except ProvisionError as exc:
            last_error = str(exc)
            if cleanup is not None:
                cleanup()
            if not port_taken(last_error):
                break
    raise ProvisionError(last_error)


def read_pid(path: Path) -> int | None:
    """The first line of a pid file as a number (postmaster.pid has more lines after it)."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def mark_owned(root: Path) -> None:
    (root / OWNER_FILE).write_text(str(os.getpid()))


def kill_recorded(pid_file: str, kill: Callable[[int], None]) -> Callable[[Path], None]:
    """A `stop_server` for sweep_stale: `kill(pid)` of the pid recorded in `<directory>/<pid_file>`, if any."""
    def stop_server(root: Path) -> None:
        pid = read_pid(root / pid_file)
        if pid is not None:
            kill(pid)
    return stop_server


def sweep_stale(prefix: str, what: str, stop_server: Callable[[Path], None],
                tmp_root: Path | None = None) -> list[Path]:
    """Stop (with `stop_server(directory)`) and remove servers whose drill process is gone."""
    removed = []
    root = tmp_root or Path(tempfile.gettempdir())
    for candidate in root.glob(f"{prefix}*"):
        owner = read_pid(candidate / OWNER_FILE)
        if owner is None or pid_alive(owner):
            continue
        stop_server(candidate)
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
        log.info("removed a %s left by drill process %s: %s", what, owner, candidate)
    return removed


def log_tail(path: Path, lines: int = 30, *, missing: str = "(no server log)", empty: str = "") -> str:
    """The last `lines` lines of a server's log, for start-up errors; `missing`/`empty` when there are none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or empty
    except OSError:
        return missing
