"""Redis stores: a throwaway local server, or a live server from a redis:// URL in the environment."""

from __future__ import annotations

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError, StoreError
from drill.provision.live import live_url
from drill.stores.base import Progress, Store, no_progress
from drill.stores.redis import KIND, RedisOptions
from drill.stores.redis.local import LocalRedisServer, redis_server_binary, redis_server_version
from drill.stores.redis.store import RedisServer, RedisStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    binary = redis_server_binary()
    version = redis_server_version(binary)
    appendonly = RedisOptions.of(config).appendonly
    progress(f"starting a throwaway Redis {version} server ({binary}{', with an AOF' if appendonly else ''})")
    local = LocalRedisServer(binary, version=version, appendonly=appendonly)
    cleanup.push(f"remove the throwaway Redis server of {config.name!r}", local.stop)
    local.start()
    server = RedisServer(host="127.0.0.1", port=local.port, local=local,
                         description=f"local server on 127.0.0.1:{local.port} (Redis {version}, {binary})")
    return RedisStore(name=config.name, config=config, server=server)


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    live = live_url(config, KIND.live_schemes, KIND.live_example)
    server = RedisServer(host=live.parts.hostname or "localhost", port=live.parts.port or 6379,
                         password=live.password, username=live.username,
                         ssl=live.parts.scheme == "rediss", description=live.description)
    store = RedisStore(name=config.name, config=config, server=server)
    try:
        store.server_version()
    except StoreError as exc:
        raise ProvisionError(f"live store {config.name!r}: {exc}") from None
    cleanup.push(f"close {config.name!r}", store.close)
    return store


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    from drill.stores.redis.container import provision_container as start

    return start(config, cleanup, progress)
