"""Redis in a throwaway container (provision = "container"): the official `redis` image by default.

The server's data directory is a directory of this machine mounted at /data, so the Redis
store works as with a local server: BGSAVE writes dump.rdb there and drill copies it; an
in-place restore stops the server (SHUTDOWN NOSAVE), puts the backup in place of dump.rdb and
starts the same container again on the same port; a restore "into" a new name starts a second
container on a copy of the backup. drill passes what the official image understands: the
command `redis-server` with options (port, bind address, dir, no persistence of its own).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.container import Container, ContainerSpec, free_host_port
from drill.provision.processes import mark_owned, sweep_stale
from drill.stores.base import Progress, Store
from drill.stores.redis import RedisOptions
from drill.stores.redis.local import AOF_DIR, RDB_NAME, LocalRedisServer
from drill.stores.redis.store import RedisServer, RedisStore

DEFAULT_IMAGE = "redis:7"
PREFIX = "drill-redis-ctr-"


@dataclass
class ContainerRedisServer(LocalRedisServer):
    """A LocalRedisServer whose process runs in a container; the data directory is shared with it."""

    image: str = DEFAULT_IMAGE
    cleanup: CleanupStack = field(default_factory=CleanupStack)
    what: str = "Redis container"
    container: Container | None = None
    _started_appendonly: bool = False

    @property
    def label(self) -> str:
        return f"container {self.container.name} ({self.image})" if self.container else "container"

    def sibling(self, appendonly: bool = False) -> LocalRedisServer:
        return ContainerRedisServer(self.binary, version=self.version, appendonly=appendonly, image=self.image,
                                    cleanup=self.cleanup, what=f"{self.what} (restored copy)")

    def start(self, rdb: Path | None = None, data: Callable[[Path], None] | None = None) -> None:
        sweep_stale(PREFIX, "Redis container directory", lambda _root: None)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        mark_owned(self.root)
        self.data_dir.mkdir()
        self.data_dir.chmod(0o777)  # the official image runs redis-server as its own user
        try:
            if rdb is not None:
                shutil.copyfile(rdb, self.rdb_path)
            if data is not None:
                data(self.data_dir)
            for placed in self.data_dir.rglob("*"):  # the official image runs redis-server as its own user
                placed.chmod(0o777 if placed.is_dir() else 0o666)
            self.port = free_host_port()
            # The container's command is fixed when it is made: an in-place restore restarts it as it was.
            persistence = (["--appendonly", "yes", "--appenddirname", AOF_DIR, "--auto-aof-rewrite-percentage", "0"]
                           if self.appendonly else ["--appendonly", "no"])
            spec = ContainerSpec(
                image=self.image, what=self.what,
                command=["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", "/data",
                         "--dbfilename", RDB_NAME, "--save", "", *persistence],
                volumes={str(self.data_dir): {"bind": "/data", "mode": "rw"}})
            self._started_appendonly = self.appendonly
            self.container = Container(spec, self.cleanup)
            self.container.start(self._probe, (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError))
            info: Any = self.client().info("server")
            self.version = str(info.get("redis_version", self.version))
        except BaseException:
            self.stop()
            raise

    def _probe(self) -> None:
        client = self.client()
        try:
            client.ping()
        finally:
            client.close()

    def start_server(self) -> None:
        if self.container is None:
            raise ProvisionError(f"the {self.what} was not started")
        if self.appendonly != self._started_appendonly:
            raise ProvisionError(f"the {self.what} was made with appendonly {'no' if self.appendonly else 'yes'}; "
                                 f"a backup {'with' if self.appendonly else 'without'} an AOF cannot be restored "
                                 f"into it in place: restore it into a new store instead")
        for placed in self.data_dir.rglob("*"):
            placed.chmod(0o777 if placed.is_dir() else 0o666)
        self.container.restart()
        self.container.wait_ready(self._probe, (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError))

    def stop_server(self) -> None:
        if self.container is None:
            return
        client = self.client()
        try:
            client.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the connection closes as the server exits
        finally:
            client.close()
        self.container.stop(timeout=30)  # waits until the container has exited

    def stop(self) -> None:
        if self.container is not None:
            self.container.remove()
            self.container = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    image = RedisOptions.of(config).image or DEFAULT_IMAGE
    local = ContainerRedisServer(binary=f"{image} (container)", appendonly=RedisOptions.of(config).appendonly,
                                 image=image,
                                 cleanup=cleanup,
                                 what=f"Redis container of {config.name!r}")
    cleanup.push(f"remove the Redis container directory of {config.name!r}", local.stop)
    progress(f"starting a throwaway Redis container ({image})")
    local.start()
    assert local.container is not None
    server = RedisServer(host="127.0.0.1", port=local.port, local=local,
                         description=f"container {local.container.name} ({image}, Redis {local.version}) on "
                                     f"127.0.0.1:{local.port}")
    return RedisStore(name=config.name, config=config, server=server)
