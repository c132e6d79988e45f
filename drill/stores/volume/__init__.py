"""Docker volume stores: a throwaway volume, or an existing named volume (live), read through a helper container.

The folder: store.py (the adapter: tar backups streamed through the helper), provision.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drill.stores.capabilities import CountsMatching, PlantsChanges
from drill.stores.kinds import KindOptions, KindSpec, OptionError, names, option, text

if TYPE_CHECKING:
    from drill.config import StoreConfig


@dataclass(frozen=True)
class VolumeOptions(KindOptions):
    image: str | None = option(None, text, "the helper image that reads and writes the volume (default alpine)")
    volume: str | None = option(None, text, "the Docker volume's name; required for a live store "
                                                "(which uses it instead of url_env); default: a new throwaway "
                                                "volume drill-<store>-<random>")
    stop_containers: tuple[str, ...] = option((), names, "containers stopped (docker stop, 60 s grace) before a "
                                                          "backup or an in-place restore and started again afterwards")

    def check(self, store: StoreConfig) -> None:
        if store.provision == "live" and not self.volume:
            raise OptionError("provision", "a live Docker volume store needs `volume`: the name of the existing "
                                           "volume")


_PROVISION = "drill.stores.volume.provision"
KIND = KindSpec(
    kind="volume", names=("Docker volume",), unit="files", part_label="directory",
    provisioners={"local": f"{_PROVISION}:provision_local", "container": f"{_PROVISION}:provision_container",
                  "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({CountsMatching, PlantsChanges}),
    options=VolumeOptions,
    live_url=False,  # a live volume is named by `volume`, on the engine DOCKER_HOST names
    extra="docker",
    summary="a Docker volume: tar backups streamed through a helper container, services stopped around them",
    formats="drill.stores.volume.formats:READER",  # the runbook's NAME_*.tar.gz
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.volume import VolumeStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.volume.store"), name)
