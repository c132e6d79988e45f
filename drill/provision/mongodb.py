"""MongoDB stores: a throwaway local server (mongod, else nx-27017), or a live server from a URL in the environment."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from pymongo.errors import PyMongoError

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ConfigError, ProvisionError
from drill.provision.local_mongodb import LocalMongoServer
from drill.redact import redact_text, register_secret, url_without_password
from drill.stores.base import Progress, Store
from drill.stores.mongodb import MongoServer, MongoStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    local = LocalMongoServer()
    cleanup.push(f"remove the throwaway MongoDB server of {config.name!r}", local.stop)
    local.start()
    progress(f"started a throwaway {local.program} server on 127.0.0.1:{local.port} ({local.path})")
    server = MongoServer(uri=local.uri, description=f"local {local.program} on 127.0.0.1:{local.port}")
    cleanup.push(f"close the MongoDB client of {config.name!r}", server.close)
    return MongoStore(name=config.name, config=config, server=server,
                      database_name=config.database or config.name)


def provision_live(config: StoreConfig, cleanup: CleanupStack) -> Store:
    assert config.url_env is not None  # validated with the configuration
    url = os.environ.get(config.url_env)
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set; it must hold the connection URL of "
                          f"live store {config.name!r} (mongodb://user:password@host:port/database)",
                          key=f"stores.{config.name}.url_env")
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise ConfigError(f"{config.url_env} must be a mongodb:// or mongodb+srv:// URL (got scheme "
                          f"{parts.scheme!r})", key=f"stores.{config.name}.url_env")
    register_secret(parts.password)
    register_secret(unquote(parts.password) if parts.password is not None else None)
    database = config.database or unquote(parts.path.lstrip("/")) or config.name
    server = MongoServer(uri=url, description=url_without_password(url)[0])
    cleanup.push(f"close the MongoDB client of {config.name!r}", server.close)
    store = MongoStore(name=config.name, config=config, server=server, database_name=database)
    try:
        exists = server.has_database(database)
    except PyMongoError as exc:
        raise ProvisionError(f"live store {config.name!r}: cannot reach {server.description}: "
                             f"{redact_text(str(exc))}") from None
    if not exists:
        raise ProvisionError(f"live store {config.name!r}: database {database!r} does not exist (has no "
                             f"collections) on {server.description}")
    cleanup.push(f"drop scratch databases of {config.name!r}", store.close)
    return store
