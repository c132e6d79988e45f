"""A throwaway Redis server: temporary directory, free loopback port, removed afterwards.

The server runs daemonized (`--daemonize yes`, its own session) with RDB saves off (`--save ""`):
drill takes RDB snapshots itself with BGSAVE. The AOF is off unless the store asks for it
(`appendonly = true`); then Redis 7 keeps it as a folder, `appendonlydir/`, next to dump.rdb, and
automatic AOF rewrites are off so that a backup copying the folder never races a rewrite. It can be started on an
existing RDB file (a restored copy) and stopped and started again on the same port (an
in-place restore). Servers left behind by a killed drill (its pid is gone) are swept on the
next provisioning, like throwaway PostgreSQL clusters.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from drill.errors import ProvisionError
from drill.provision.processes import (
    kill_and_wait,
    kill_recorded,
    log_tail,
    mark_owned,
    pid_alive,
    read_pid,
    start_on_free_port,
    sweep_stale,
)

log = logging.getLogger(__name__)
PREFIX = "drill-redis-"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
RDB_NAME = "dump.rdb"
AOF_DIR = "appendonlydir"


def redis_server_binary() -> str:
    """$DRILL_REDIS_SERVER, else redis-server on PATH (Debian: apt-get install redis-server)."""
    explicit = os.environ.get("DRILL_REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ProvisionError(f"DRILL_REDIS_SERVER={explicit} is not an executable redis-server")
        return explicit
    found = shutil.which("redis-server")
    if found is None:
        raise ProvisionError("no redis-server found on PATH: install it (apt-get install redis-server) or set "
                             "DRILL_REDIS_SERVER to its path")
    return found


def redis_server_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ProvisionError(f"cannot run {binary} --version: {exc}") from None
    for word in done.stdout.split():
        if word.startswith("v="):
            return word[2:]
    return "unknown"


def sweep_stale_servers(tmp_root: Path | None = None) -> list[Path]:
    """Remove servers whose drill process is gone (a drill killed with SIGKILL leaves them)."""
    return sweep_stale(PREFIX, "Redis server", kill_recorded("data/redis.pid", kill_and_wait), tmp_root)


@dataclass
class LocalRedisServer:
    """start() makes the directory and runs the server; stop() kills it and removes everything (idempotent)."""

    binary: str
    version: str = "unknown"
    root: Path | None = None
    port: int = 0
    appendonly: bool = False
    # More redis-server options, e.g. bench/store_bench.py's `--enable-debug-command local` (DEBUG DIGEST).
    extra_args: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def rdb_path(self) -> Path:
        return self.data_dir / RDB_NAME

    @property
    def aof_dir(self) -> Path:
        return self.data_dir / AOF_DIR

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def client(self, db: int = 0) -> redis.Redis:
        # No retries: readiness polling and SHUTDOWN expect connection errors and handle them at once.
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=60, socket_connect_timeout=5,
                           retry=Retry(NoBackoff(), 0))

    @property
    def label(self) -> str:
        """What this server is, for reports ("local server"; a container says so)."""
        return "local server"

    def sibling(self, appendonly: bool = False) -> LocalRedisServer:
        """A new, not yet started server like this one (a restored copy runs where the original does)."""
        return LocalRedisServer(self.binary, version=self.version, appendonly=appendonly)

    def start(self, rdb: Path | None = None, data: Callable[[Path], None] | None = None) -> None:
        """A new server, empty, or holding a copy of the RDB file `rdb`, or the files `data(dir)` puts in
        its data directory (a backup's dump.rdb and appendonlydir/)."""
        sweep_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        self.data_dir.mkdir()
        try:
            if rdb is not None:
                shutil.copyfile(rdb, self.rdb_path)
            if data is not None:
                data(self.data_dir)
            start_on_free_port(self._start_on, lambda error: "Address already in use" in error)
        except BaseException:
            # A failed start cleans up after itself and says why.
            self.stop()
            raise

    def _start_on(self, port: int) -> None:
        self.port = port
        self.start_server()

    def start_server(self) -> None:
        """Start redis-server on self.port and self.data_dir (again, after stop_server) and wait until it answers."""
        self.log_file.unlink(missing_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--dbfilename", RDB_NAME, "--daemonize", "yes", "--pidfile", str(self.pid_file),
                "--logfile", str(self.log_file), "--save", ""]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appenddirname", AOF_DIR, "--auto-aof-rewrite-percentage", "0"]
        else:
            args += ["--appendonly", "no"]
        args += list(self.extra_args)
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=READY_TIMEOUT,
                                  start_new_session=True, cwd=str(self.data_dir))
        except (OSError, subprocess.SubprocessError) as exc:
            raise ProvisionError(f"cannot run {self.binary}: {exc}") from None
        if done.returncode != 0:
            raise ProvisionError(f"redis-server {self.version} did not start (exit {done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()}\nserver log:\n{self._log_tail()}")
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll PING until the server that wrote our pid file answers (loading a large RDB takes a while)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last: Exception | str | None = None
        client = self.client()
        try:
            while time.monotonic() < deadline:
                tail = self._log_tail()
                if "Failed listening" in tail or "Address already in use" in tail or "Fatal" in tail \
                        or "# Short read" in tail or "Bad file format" in tail:
                    raise ProvisionError(f"redis-server {self.version} on 127.0.0.1:{self.port} failed to start; "
                                         f"server log:\n{tail}")
                try:
                    if client.ping():
                        info: Any = client.info("server")
                        pid = read_pid(self.pid_file)
                        if pid is not None and int(info["process_id"]) == pid:
                            return
                        last = f"port {self.port} is answered by process {info['process_id']}, not ours ({pid})"
                except redis.exceptions.BusyLoadingError as exc:  # still loading the RDB file
                    last = exc
                except redis.exceptions.ConnectionError as exc:  # transient while the server starts
                    last = exc
                time.sleep(0.02)
        finally:
            client.close()
        raise ProvisionError(f"redis-server on 127.0.0.1:{self.port} was not ready within {READY_TIMEOUT:.0f}s: "
                             f"{last}\nserver log:\n{self._log_tail()}")

    def stop_server(self) -> None:
        """SHUTDOWN NOSAVE (the data on disk stays as it is) and wait for the process to be gone."""
        if self.root is None:
            return
        pid = read_pid(self.pid_file)
        client = self.client()
        try:
            client.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the connection closes as the server exits (or it was not running)
        except redis.exceptions.RedisError as exc:
            log.warning("SHUTDOWN NOSAVE of the Redis server on port %s failed: %s", self.port, exc)
        finally:
            client.close()
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            kill_and_wait(pid)
        self.pid_file.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        return log_tail(self.log_file)

    def stop(self) -> None:
        """Kill the server (it is being thrown away) and delete its directory; safe to call more than once."""
        if self.root is None:
            return
        pid = read_pid(self.pid_file)
        if pid is not None:
            kill_and_wait(pid)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
