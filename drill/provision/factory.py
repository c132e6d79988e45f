"""Bring a named store into existence as its configuration says: local, container or live.

Each store kind has a module `drill.provision.<kind>` with `provision_local(config, cleanup,
progress)` and `provision_live(config, cleanup)` (and `provision_container(config, cleanup, progress)`
where the kind runs in a container); this dispatcher finds it, so adding a kind
touches no shared code. A kind without such a module is refused with a clear message.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.live import live_url
from drill.stores.base import Progress, Store, no_progress


def _kind_module(kind: str) -> Any:
    try:
        return importlib.import_module(f"drill.provision.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"drill.provision.{kind}":
            raise ProvisionError(f"{kind} stores need the Python package {exc.name!r}: "
                                 f"pip install 'drill[{kind}]'") from None
        return None


def provision(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress, *,
              allow_missing: bool = False) -> Store:
    """Return a ready store; everything it needed is registered on `cleanup` as soon as it exists.

    `allow_missing`: a live store whose data does not exist yet is not an error (an in-place `drill restore`
    creates it), for the kinds whose `provision_live` takes that option."""
    module = _kind_module(config.kind)
    if module is None:
        raise ProvisionError(f"store {config.name!r}: {config.kind} stores are not implemented yet in this "
                             f"version of drill")
    if config.provision == "container":
        container: Callable[[StoreConfig, CleanupStack, Progress], Store] | None = getattr(
            module, "provision_container", None)
        if container is None:
            raise ProvisionError(f"store {config.name!r}: provision = \"container\" is not available for "
                                 f"{config.kind} stores in this version of drill; use \"local\" (a throwaway "
                                 f"server) or \"live\" (a URL from the environment)")
        return container(config, cleanup, progress)
    if config.provision == "live":
        live: Callable[..., Store] = module.provision_live
        if allow_missing and "allow_missing" in inspect.signature(live).parameters:
            return live(config, cleanup, allow_missing=True)
        return live(config, cleanup)
    local: Callable[[StoreConfig, CleanupStack, Progress], Store] = module.provision_local
    return local(config, cleanup, progress)


def check_live_url(config: StoreConfig) -> None:
    """A ConfigError when a live store's `url_env` is not set or holds no usable URL of its kind (for `drill
    check`, so that `drill run` refuses before anything starts). Kinds whose module cannot be imported here (an
    optional dependency is missing) are checked when they are provisioned."""
    if not config.is_live or config.url_env is None:
        return
    try:
        module = _kind_module(config.kind)
    except ProvisionError:
        module = None
    schemes: tuple[str, ...] | None = getattr(module, "LIVE_URL_SCHEMES", None)
    example: str = getattr(module, "LIVE_URL_EXAMPLE", "a URL")
    live_url(config, schemes or (), example, check_scheme=schemes is not None)
