"""MongoDB in a throwaway container (provision = "container"): the official `mongo` image by default.

drill passes what the official image understands: the command `mongod --port P --bind_ip 127.0.0.1`.
It sets no MONGO_INITDB_ROOT_* variables: with them the official entrypoint first runs a temporary
mongod to create the user, which on the host network answers on the same port and then goes
away; without them there is one server from the start. Like drill's local throwaway servers it
listens on loopback only, without authentication.
"""

from __future__ import annotations

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.provision.container import Container, ContainerSpec, free_host_port
from drill.stores.base import Progress, Store
from drill.stores.mongodb import MongoOptions
from drill.stores.mongodb.local import TRANSIENT
from drill.stores.mongodb.store import MongoServer, MongoStore

DEFAULT_IMAGE = "mongo:7"


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    image = MongoOptions.of(config).image or DEFAULT_IMAGE
    port = free_host_port()
    spec = ContainerSpec(image=image, what=f"MongoDB container of {config.name!r}",
                         command=["mongod", "--port", str(port), "--bind_ip", "127.0.0.1"])
    progress(f"starting a throwaway MongoDB container ({image}) on 127.0.0.1:{port}")
    container = Container(spec, cleanup)
    server = MongoServer(uri=f"mongodb://127.0.0.1:{port}/?directConnection=true",
                         description=f"container {container.name} ({image}) on 127.0.0.1:{port}")
    cleanup.push(f"close the MongoDB client of {config.name!r}", server.close)

    def probe() -> None:
        server.client().admin.command("ping")

    container.start(probe, TRANSIENT)
    return MongoStore(name=config.name, config=config, server=server,
                      database_name=MongoOptions.of(config).database or config.name)
