"""Redis stores: a throwaway local server, one in a container, or a live server.

The folder: store.py (the adapter: RDB/AOF backups, DUMP/RESTORE replay into a live server),
provision.py, local.py (the throwaway server), container.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from drill.stores.capabilities import CountsExpiring, CountsMatching, PlantsChanges
from drill.stores.kinds import KindOptions, KindSpec, flag, option, text


@dataclass(frozen=True)
class RedisOptions(KindOptions):
    appendonly: bool = option(False, flag, "the local server keeps an AOF (appendonlydir/, automatic rewrites off) "
                                           "and every backup is a tar of dump.rdb plus the AOF folder (format "
                                           "redis-rdb+aof), restored by starting the server on that AOF; a live "
                                           "Redis 7 server running with the AOF on has its AOF copied whatever "
                                           "this key says")
    image: str | None = option(None, text, "container: the image (default redis:7)")


_PROVISION = "drill.stores.redis.provision"
KIND = KindSpec(
    kind="redis", names=("Redis",), unit="keys", part_label="key-space",
    provisioners={"local": f"{_PROVISION}:provision_local", "container": f"{_PROVISION}:provision_container",
                  "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({CountsExpiring, CountsMatching, PlantsChanges}),
    options=RedisOptions,
    live_schemes=("redis", "rediss"), live_example="redis://[user:password@]host:port",
    live_restore_into=False,  # a live server has no "new database" next to it: restored in place only
    summary="a Redis server: RDB (and AOF) backups; a live server is restored by DUMP/RESTORE replay",
    formats="drill.stores.redis.formats:READER",  # dump_*.rdb files and copies of appendonlydir/
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.redis import RedisStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.redis.store"), name)
