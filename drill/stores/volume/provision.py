"""Docker volume stores: a throwaway volume (local or container), or an existing named volume (live).

A throwaway volume is named `drill-<store>-<random>` and labelled `drill.owner=<pid>`: it is
removed on success, failure and Ctrl-C through the CleanupStack, and by the stale sweep when the
drill that made it was killed. A live volume is the one `volume = "..."` names; drill only
loses or overwrites it when its configuration says `destructive = true`.
"""

from __future__ import annotations

import uuid

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.container import docker_client, owner_labels, sweep_stale
from drill.stores.base import Progress, Store, no_progress
from drill.stores.volume import VolumeOptions
from drill.stores.volume.store import VolumeStore, _remove_volume

DEFAULT_HELPER_IMAGE = "alpine"


def _require_helper(client: object, image: str, name: str) -> None:
    import docker.errors

    images = client.images  # type: ignore[attr-defined]
    try:
        images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        images.pull(image)
    except Exception as exc:
        raise ProvisionError(f"volume store {name!r}: helper image {image!r} is not on the engine and could not be "
                             f"pulled ({str(exc).strip().splitlines()[-1][:200]}); pull or build it first, or name "
                             f"another image with `image = ...` under [stores.{name}]") from None


def _exists(client: object, name: str) -> bool:
    import docker.errors

    try:
        client.volumes.get(name)  # type: ignore[attr-defined]
        return True
    except docker.errors.NotFound:
        return False


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    """A new, empty, throwaway volume."""
    client = docker_client()
    sweep_stale(client)
    helper = VolumeOptions.of(config).image or DEFAULT_HELPER_IMAGE
    _require_helper(client, helper, config.name)
    name = VolumeOptions.of(config).volume or f"drill-{config.name}-{uuid.uuid4().hex[:8]}"
    labels = owner_labels()
    if _exists(client, name):
        raise ProvisionError(f"volume store {config.name!r}: volume {name!r} already exists; a throwaway volume "
                             f"must be new (use provision = \"live\" for an existing volume)")
    cleanup.push(f"remove the throwaway volume {name}", lambda: _remove_volume(client, name))
    client.volumes.create(name=name, labels=labels)
    progress(f"created a throwaway Docker volume {name} (helper image {helper})")
    store = VolumeStore(name=config.name, config=config, client=client, volume=name, helper_image=helper,
                        labels=labels)
    cleanup.push(f"close {config.name!r}", store.close)
    return store


# A Docker volume lives in an engine: "local" means the same throwaway volume as "container".
provision_local = provision_container


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    client = docker_client()
    options = VolumeOptions.of(config)
    helper = options.image or DEFAULT_HELPER_IMAGE
    _require_helper(client, helper, config.name)
    volume = options.volume
    assert volume is not None  # drill.toml validation requires it for live volume stores
    import docker.errors

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        raise ProvisionError(f"live volume store {config.name!r}: Docker volume {volume!r} does not exist on "
                             f"the engine") from None
    store = VolumeStore(name=config.name, config=config, client=client, volume=volume, helper_image=helper,
                        labels=owner_labels())
    cleanup.push(f"close {config.name!r}", store.close)
    return store
