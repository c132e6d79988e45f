"""Redis stores: a throwaway local server, or a live server from a redis:// URL in the environment."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ConfigError, ProvisionError, StoreError
from drill.provision.local_redis import LocalRedisServer, redis_server_binary, redis_server_version
from drill.redact import register_secret, url_without_password
from drill.stores.base import Progress, Store
from drill.stores.redis import RedisServer, RedisStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    binary = redis_server_binary()
    version = redis_server_version(binary)
    progress(f"starting a throwaway Redis {version} server ({binary})")
    local = LocalRedisServer(binary, version=version)
    cleanup.push(f"remove the throwaway Redis server of {config.name!r}", local.stop)
    local.start()
    server = RedisServer(host="127.0.0.1", port=local.port, local=local,
                         description=f"local server on 127.0.0.1:{local.port} (Redis {version}, {binary})")
    return RedisStore(name=config.name, config=config, server=server)


def provision_live(config: StoreConfig, cleanup: CleanupStack) -> Store:
    assert config.url_env is not None  # validated with the configuration
    url = os.environ.get(config.url_env)
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set; it must hold the connection URL of "
                          f"live store {config.name!r} (redis://[user:password@]host:port)",
                          key=f"stores.{config.name}.url_env")
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"{config.url_env} must be a redis:// or rediss:// URL (got scheme {parts.scheme!r})",
                          key=f"stores.{config.name}.url_env")
    password = unquote(parts.password) if parts.password is not None else None
    register_secret(password)
    register_secret(parts.password)
    server = RedisServer(host=parts.hostname or "localhost", port=parts.port or 6379, password=password,
                         username=unquote(parts.username) if parts.username else None,
                         ssl=parts.scheme == "rediss", description=url_without_password(url)[0])
    store = RedisStore(name=config.name, config=config, server=server)
    try:
        store.server_version()
    except StoreError as exc:
        raise ProvisionError(f"live store {config.name!r}: {exc}") from None
    cleanup.push(f"close {config.name!r}", store.close)
    return store
