"""Bring a named store into existence as its configuration says: local, container or live.

Each kind declares its provisioners (drill.stores.kinds.KindSpec.provisioners: provision mode ->
"module:function"); this dispatcher imports the one asked for when it is first used, so a kind's
client libraries load only when a store of that kind is provisioned. A mode the kind does not
declare is refused with the modes it does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.distribution import install_hint
from drill.errors import ProvisionError
from drill.names import check_name
from drill.provision.live import live_url
from drill.stores import kinds
from drill.stores.base import Progress, Store, no_progress

Provisioner = Callable[[StoreConfig, CleanupStack, Progress], Store]


def _kind_module(name: str, spec: kinds.KindSpec) -> ModuleType:
    """The module that holds a kind's provisioner; a missing client library says which extra brings it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or name == exc.name or name.startswith(f"{exc.name}."):
            raise ProvisionError(f"{spec.kind} stores: their provisioner module {name!r} is not installed") from None
        extra = install_hint(spec.extra) if spec.extra else "install the package that provides it"
        raise ProvisionError(f"{spec.kind} stores need the Python package {exc.name!r}: {extra}") from None


def provisioner(config: StoreConfig, *, shared: bool = False) -> Provisioner:
    """The function that provisions `config` as its kind declares for its provision mode (`shared`: on a server the
    run shares, when the kind declares a shared provisioner and the store is local)."""
    spec = kinds.find(config.kind)
    if spec is None:
        raise ProvisionError(f"store {config.name!r}: {config.kind!r} is not a store kind drill knows; one of: "
                             f"{', '.join(kinds.all_kinds())}")
    target = spec.provisioners.get(config.provision)
    if shared and config.provision == "local" and not config.is_live and spec.shared_provisioner:
        target = spec.shared_provisioner
    if target is None:
        raise ProvisionError(f"store {config.name!r}: provision = \"{config.provision}\" is not available for "
                             f"{config.kind} stores in this version of drill; use one of: "
                             f"{', '.join(repr(m) for m in spec.provisioners)}")
    module_name, _, function = target.partition(":")
    found = vars(_kind_module(module_name, spec)).get(function)
    if not callable(found):
        raise ProvisionError(f"{config.kind} stores declare the provisioner {target!r}, which does not exist")
    made: Provisioner = found
    return made


def provision(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress, *,
              allow_missing: bool = False, shared: bool = False) -> Store:
    """Return a ready store; everything it needed is registered on `cleanup` as soon as it exists.

    `allow_missing`: a live store whose data does not exist yet is not an error (an in-place `drill restore`
    creates it), for the kinds that declare it (KindSpec.live_creates_missing). `shared`: a local store may live on
    the run's shared server (drill.provision.sharing decided the scenario qualifies)."""
    made = provisioner(config, shared=shared)
    if allow_missing and config.is_live and kinds.spec(config.kind).live_creates_missing:
        creates: Callable[..., Store] = made
        return creates(config, cleanup, progress, allow_missing=True)
    return made(config, cleanup, progress)


def check_live_url(config: StoreConfig) -> None:
    """A ConfigError when a live store's `url_env` is not set or holds no usable URL of its kind (for `drill
    check`, so that `drill run` refuses before anything starts), as the kind declares (KindSpec.live_schemes)."""
    spec = kinds.find(config.kind)
    if not config.is_live or config.url_env is None or spec is None or not spec.live_url:
        return
    live = live_url(config, spec.live_schemes, spec.live_example, check_scheme=bool(spec.live_schemes))
    database = getattr(config.options, "database", None) or live.database
    if spec.live_url_database and database:
        check_name(database, f"the database of live store {config.name!r} ({config.url_env})")
