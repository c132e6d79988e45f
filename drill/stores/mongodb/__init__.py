"""MongoDB stores: a database on a throwaway local server (mongod, else nx-27017), in a container, or live.

The folder: store.py (the adapter: mongodump-style dumps, fingerprints), provision.py,
local.py (the throwaway server), container.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from drill.names import database_name
from drill.stores.capabilities import ExplainsDifferences, PlantsChanges, Removable, ScratchTargets
from drill.stores.kinds import KindOptions, KindSpec, option, text


@dataclass(frozen=True)
class MongoOptions(KindOptions):
    database: str | None = option(None, database_name, "the database (default: the store name; live: the URL's)")
    image: str | None = option(None, text, "container: the image (default mongo:7)")

    def throwaway(self) -> MongoOptions:
        return MongoOptions(database=self.database)


_PROVISION = "drill.stores.mongodb.provision"
KIND = KindSpec(
    kind="mongodb", names=("MongoDB",), unit="documents", part_label="collection",
    provisioners={"local": f"{_PROVISION}:provision_local", "container": f"{_PROVISION}:provision_container",
                  "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({ExplainsDifferences, Removable, ScratchTargets, PlantsChanges}),
    options=MongoOptions,
    live_schemes=("mongodb", "mongodb+srv"), live_example="mongodb://user:password@host:port/database",
    extra="mongodb",  # nx-27017, the MongoDB wire server a throwaway local store runs on where mongod is missing
    summary="a MongoDB database: mongodump-format backups (streamed with pymongo when the tools are missing)",
    formats="drill.stores.mongodb.formats:READER",  # mongodump folders, their tar.gz, mongodump --archive [--gzip]
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.mongodb import MongoStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.mongodb.store"), name)
