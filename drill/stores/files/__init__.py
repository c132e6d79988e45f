"""Files stores: a folder of configuration files or certificates, restored from the runbook's archives.

The runbook restores `config_latest.tar.gz` and `ssl-certificates_latest.tar.gz` by hand and checks
the certificate with `openssl x509 ... | grep "Not After"`. A files store is such a folder: a
throwaway scratch folder (local, the default) or an existing folder named by `path` (live). It is
restored from a tar.gz with drill's tar rules, counted and fingerprinted file by file, and checked
with its own sentences: a file is there, a certificate is valid for long enough.

The folder: store.py (the adapter), provision.py, formats.py (the archives it reads), checks.py (counts by
pattern, the self-test's planted change), steps.py (its sentences), certificates.py (reading X.509
certificates with `cryptography`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from drill.stores import capabilities
from drill.stores.capabilities import CountsMatching, PlantsChanges, Removable, ScratchTargets
from drill.stores.kinds import KindOptions, KindSpec, OptionError, option, text

if TYPE_CHECKING:
    from drill.config import StoreConfig


@runtime_checkable
class HoldsFiles(Protocol):
    """A store whose data is files in a folder (the files kind's own sentences need it)."""

    def file_path(self, name: str) -> Path:
        """The path of a file of the store, refused when the name leaves the store's folder."""


@dataclass(frozen=True)
class FilesOptions(KindOptions):
    path: str | None = option(None, text, "live: the folder that is the store (e.g. /etc/nginx/ssl); a local store "
                                          "is a throwaway folder")

    def check(self, store: StoreConfig) -> None:
        if store.provision == "live" and not self.path:
            raise OptionError("provision", "a live files store needs `path`: the folder that holds its files")
        if store.provision != "live" and self.path:
            raise OptionError("path", "`path` names the folder of a live files store (provision = \"live\"); a local "
                                      "files store is a throwaway folder")

    def throwaway(self) -> FilesOptions:
        return FilesOptions()


capabilities.register(HoldsFiles, "holds files in a folder")
_PROVISION = "drill.stores.files.provision"
KIND = KindSpec(
    kind="files", names=("files",), unit="files", part_label="directory",
    provisioners={"local": f"{_PROVISION}:provision_local", "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({HoldsFiles, Removable, ScratchTargets, CountsMatching, PlantsChanges}),
    options=FilesOptions,
    live_url=False,  # a live folder is named by `path`
    extra="files",
    steps=("drill.stores.files.steps",),
    summary="a folder of configuration files or certificates: tar.gz backups (config_*.tar.gz, ssl-certificates_*)",
    formats="drill.stores.files.formats:READER",
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.files import FilesStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.files.store"), name)
