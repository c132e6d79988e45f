"""Google Cloud Storage stores: a bucket on a throwaway fake-gcs-server, or a live bucket.

The folder: store.py (the adapter: archives or bucket-to-bucket copies, object versions),
provision.py, local.py (the throwaway fake-gcs-server).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from drill.stores import capabilities
from drill.stores.capabilities import (
    CountsMatching,
    ExplainsDifferences,
    ObjectStore,
    ObjectVersions,
    PlantsChanges,
)
from drill.stores.kinds import KindOptions, KindSpec, matching, option

if TYPE_CHECKING:
    from drill.stores.base import BackupArtifact


@runtime_checkable
class ReadsDatedCopies(Protocol):
    """A bucket store that restores from a dated copy production made under a backup bucket (gcs_backup.sh)."""

    def dated_copy(self, bucket: str, pattern: str, zone: str = "UTC") -> BackupArtifact:
        """The newest copy under `pattern` (`models/*/`) in `bucket` (a date in its name read in `zone`), as a
        backup with its manifest."""


capabilities.register(ReadsDatedCopies, "restores dated copies from a backup bucket")
_BUCKET = matching(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]",
                   "must be a bucket name: 3-63 lowercase letters, digits, '-', '_' or '.', starting and ending with "
                   "a letter or digit")


@dataclass(frozen=True)
class GcsOptions(KindOptions):
    bucket: str | None = option(None, _BUCKET, "the bucket this store is: 3-63 lowercase letters, digits, -, _ or . "
                                               "(default: the store name)")
    backup_bucket: str | None = option(None, _BUCKET, "back up by server-side copy into this bucket "
                                                      "(default: a local archive)")


_PROVISION = "drill.stores.gcs.provision"
KIND = KindSpec(
    kind="gcs", names=("GCS", "Google Cloud Storage"), unit="objects", part_label="prefix",
    provisioners={"local": f"{_PROVISION}:provision_local", "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({ExplainsDifferences, ObjectStore, ObjectVersions, CountsMatching, PlantsChanges,
                            ReadsDatedCopies}),
    options=GcsOptions,
    live_schemes=("gs", "http", "https"), live_example="gs://PROJECT, or http://127.0.0.1:4443 for an emulator",
    steps=("drill.steps.gcs",),  # its own sentences
    extra="gcs",
    summary="a GCS bucket: archives with a manifest of hashes, or server-side copies into a backup bucket",
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.gcs import GcsStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.gcs.store"), name)
