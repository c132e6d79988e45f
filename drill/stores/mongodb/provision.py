"""MongoDB stores: a throwaway local server (mongod, else nx-27017), or a live server from a URL in the environment."""

from __future__ import annotations

from pymongo.errors import PyMongoError

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.live import live_url
from drill.redact import redact_text
from drill.stores.base import Progress, Store, no_progress
from drill.stores.mongodb import KIND, MongoOptions
from drill.stores.mongodb.local import LocalMongoServer
from drill.stores.mongodb.store import MongoServer, MongoStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    local = LocalMongoServer()
    cleanup.push(f"remove the throwaway MongoDB server of {config.name!r}", local.stop)
    local.start()
    progress(f"started a throwaway {local.program} server on 127.0.0.1:{local.port} ({local.path})")
    server = MongoServer(uri=local.uri, description=f"local {local.program} on 127.0.0.1:{local.port}")
    cleanup.push(f"close the MongoDB client of {config.name!r}", server.close)
    return MongoStore(name=config.name, config=config, server=server,
                      database_name=MongoOptions.of(config).database or config.name)


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    live = live_url(config, KIND.live_schemes, KIND.live_example)
    database = MongoOptions.of(config).database or live.database or config.name
    server = MongoServer(uri=live.url, description=live.description)
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


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    from drill.stores.mongodb.container import provision_container as start

    return start(config, cleanup, progress)
