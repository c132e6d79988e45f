"""Old import paths of modules that moved into their store kind's folder (drill/stores/<kind>/).

Each kind now keeps its adapter, provisioners, seed and codec together. Code written against the
old paths (`drill.provision.local_postgres`, `drill.pitr`, ...) still imports them: the old name
is the very same module object as the new one, so attributes and monkeypatches agree. New code
imports the new paths; this table only shrinks.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

MOVED = {
    "drill.pitr": "drill.stores.postgres.pitr",
    "drill.stores.postgres_seed": "drill.stores.postgres.seed",
    "drill.provision.postgres": "drill.stores.postgres.provision",
    "drill.provision.local_postgres": "drill.stores.postgres.local",
    "drill.provision.container_postgres": "drill.stores.postgres.container",
    "drill.provision.pg_binaries": "drill.stores.postgres.binaries",
    "drill.provision.mongodb": "drill.stores.mongodb.provision",
    "drill.provision.local_mongodb": "drill.stores.mongodb.local",
    "drill.provision.container_mongodb": "drill.stores.mongodb.container",
    "drill.provision.redis": "drill.stores.redis.provision",
    "drill.provision.local_redis": "drill.stores.redis.local",
    "drill.provision.container_redis": "drill.stores.redis.container",
    "drill.provision.volume": "drill.stores.volume.provision",
    "drill.provision.gcs": "drill.stores.gcs.provision",
    "drill.provision.local_gcs": "drill.stores.gcs.local",
    "drill.provision.firestore": "drill.stores.firestore.provision",
    "drill.provision.local_firestore": "drill.stores.firestore.local",
    "drill.stores.firestore_codec": "drill.stores.firestore.codec",
    "drill.stores.firestore_seed": "drill.stores.firestore.seed",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and hands back the module under its new name (imported once, shared)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        return None  # already executed under its new name


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
