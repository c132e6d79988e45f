"""Where a files store's folder comes from: a throwaway folder (local), or an existing one named by `path` (live)."""

from __future__ import annotations

import shutil
from pathlib import Path

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.stores.base import Progress, Store, no_progress
from drill.stores.files import FilesOptions
from drill.stores.files.store import FilesStore, scratch_folder


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    root = scratch_folder()
    cleanup.push(f"remove the throwaway folder of {config.name!r}",
                 lambda: shutil.rmtree(root.parent, ignore_errors=True))
    progress(f"made a throwaway folder {root} for files store {config.name}")
    store = FilesStore(name=config.name, config=config, root=root)
    cleanup.push(f"remove the scratch folders of {config.name!r}", store.close)
    return store


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    path = FilesOptions.of(config).path
    assert path is not None  # FilesOptions.check requires it for a live store
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ProvisionError(f"live files store {config.name!r}: {root} is not a folder (`path` under "
                             f"[stores.{config.name}]); drill never creates a live store")
    store = FilesStore(name=config.name, config=config, root=root.resolve())
    cleanup.push(f"remove the scratch folders of {config.name!r}", store.close)
    return store
