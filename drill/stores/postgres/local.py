"""A throwaway PostgreSQL cluster: temporary directory, free loopback port, removed afterwards.

Runs as root too: PostgreSQL refuses to run as root, so the server programs run as the `postgres`
user when the machine has one, else as `nobody`. The server gets its own session so that a Ctrl-C
aimed at drill does not kill it behind drill's back: drill stops it itself, then deletes the files.
Clusters left behind by a killed drill (its pid is gone) are swept on the next provisioning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drill.errors import ProvisionError
from drill.provision.processes import free_port, log_tail, mark_owned, pid_alive, read_pid, sweep_stale
from drill.stores.postgres.binaries import PgBinaries

log = logging.getLogger(__name__)
PREFIX = "drill-pg-"
READY_TIMEOUT = 60.0


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when drill runs as root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ProvisionError("running as root and the machine has neither a `postgres` nor a `nobody` account "
                         "to run PostgreSQL as; create one (useradd --system postgres) or run drill as a normal user")


def _kill_postmaster(data_dir: Path) -> None:
    pid = read_pid(data_dir / "postmaster.pid")
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the cluster is being thrown away
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def sweep_stale_clusters(tmp_root: Path | None = None) -> list[Path]:
    """Remove clusters whose drill process is gone (a drill killed with SIGKILL leaves them)."""
    return sweep_stale(PREFIX, "PostgreSQL cluster", lambda root: _kill_postmaster(root / "data"), tmp_root)


@dataclass
class LocalPostgresCluster:
    """Use as a context manager, or call start()/stop(); stop() is safe to call more than once."""

    binaries: PgBinaries
    superuser_password: str | None = None  # None: trust authentication on loopback
    extra_settings: tuple[str, ...] = ()
    root: Path | None = None
    port: int = 0

    def __enter__(self) -> LocalPostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    @property
    def running(self) -> bool:
        return self.root is not None and (self.data_dir / "postmaster.pid").exists()

    def _run_as_server_user(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                                  start_new_session=True, cwd=str(self.root))
        except OSError as exc:  # e.g. DRILL_PG_BIN in a folder the server's account cannot read
            who = f" as {user.pw_name}" if user else ""
            raise ProvisionError(f"cannot run {args[0]}{who}: {exc.strerror}") from None

    def start(self) -> None:
        sweep_stale_clusters()
        user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        self.socket_dir.mkdir()
        if user:
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            # testcontainers-style: a failed start cleans up after itself and says why.
            self.stop()
            raise

    def _initdb(self) -> None:
        args = [self.binaries.path("initdb"), "-D", str(self.data_dir), "-U", "postgres", "-E", "UTF8",
                "--no-locale", "--no-sync"]
        pwfile = None
        if self.superuser_password is not None:
            assert self.root is not None
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.superuser_password + "\n")
            user = _server_user()
            if user:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            os.chmod(pwfile, 0o600)
            args += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth=trust"]
        try:
            done = self._run_as_server_user(args)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ProvisionError(f"initdb failed (exit {done.returncode}) in {self.data_dir}:\n"
                                 f"{done.stderr.strip() or done.stdout.strip()}")

    def _start_server(self) -> None:
        last_error = ""
        for _attempt in range(3):  # another process may grab the free port between probe and bind
            self.port = free_port()
            options = [f"-p {self.port}", f"-k {self.socket_dir}", "-c listen_addresses=127.0.0.1",
                       # A throwaway cluster trades crash safety for speed; it is deleted afterwards.
                       "-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off",
                       *(f"-c {s}" for s in self.extra_settings)]
            done = self._run_as_server_user([self.binaries.path("pg_ctl"), "start", "-w", "-t",
                                             str(int(READY_TIMEOUT)), "-D", str(self.data_dir),
                                             "-l", str(self.log_file), "-o", " ".join(options)],
                                            timeout=READY_TIMEOUT + 10)
            if done.returncode == 0:
                self._wait_ready()
                return
            last_error = self._log_tail()
            if "Address already in use" not in last_error and "could not bind" not in last_error:
                break
        raise ProvisionError(f"PostgreSQL {self.binaries.version} did not start "
                             f"({self.binaries.bin_dir}); server log:\n{last_error}")

    def _wait_ready(self) -> None:
        """Poll until a real connection succeeds (pg_ctl -w already waited; this proves TCP works)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError as exc:  # transient while the server finishes starting
                last = exc
                time.sleep(0.05)
        raise ProvisionError(f"PostgreSQL on port {self.port} accepted no connection within "
                             f"{READY_TIMEOUT:.0f}s: {last}\nserver log:\n{self._log_tail()}")

    def conninfo(self, dbname: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "user": "postgres", "dbname": dbname}
        if self.superuser_password is not None:
            parts["password"] = self.superuser_password
        return psycopg.conninfo.make_conninfo(**parts)

    def url(self, dbname: str, *, with_password: bool = True) -> str:
        secret = f":{self.superuser_password}" if (self.superuser_password and with_password) else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{dbname}"

    def _log_tail(self) -> str:
        return log_tail(self.log_file)

    def stop(self) -> None:
        if self.root is None:
            return
        root = self.root
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run_as_server_user([self.binaries.path("pg_ctl"), "stop", "-D", str(self.data_dir),
                                          "-m", "immediate", "-w", "-t", "30"], timeout=40)
            _kill_postmaster(self.data_dir)
        shutil.rmtree(root, ignore_errors=True)
        self.root = None
