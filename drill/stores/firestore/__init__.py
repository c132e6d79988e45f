"""Firestore stores: a project on a throwaway local emulator, or a live database (Cloud Firestore or an emulator).

The folder: store.py (the adapter), codec.py (the backup format and fingerprints), seed.py,
provision.py, local.py (the throwaway emulator).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from drill.stores.capabilities import CountsMatching, ExplainsDifferences, PlantsChanges, ScratchTargets
from drill.stores.kinds import KindOptions, KindSpec, matching, option


@dataclass(frozen=True)
class FirestoreOptions(KindOptions):
    project: str | None = option(
        None, matching(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]*", "must be a Google Cloud project id (lower-case letters, "
                       "digits, hyphens; starts with a letter), e.g. \"my-project\""),
        "the project id (default: the live URL's, else the store name)")
    export_uri: str | None = option(
        None, matching(r"gs://[a-z0-9][a-z0-9._-]*(/.*)?", "must be a Cloud Storage location gs://BUCKET[/PREFIX] "
                       "(the Firestore managed export writes there)"),
        "live: gs://bucket/prefix for the Admin API's managed export/import")


_PROVISION = "drill.stores.firestore.provision"
KIND = KindSpec(
    kind="firestore", names=("Firestore",), unit="documents", part_label="collection",
    provisioners={"local": f"{_PROVISION}:provision_local", "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({ExplainsDifferences, ScratchTargets, CountsMatching, PlantsChanges}),
    options=FirestoreOptions,
    live_schemes=("firestore", "http"),
    live_example="firestore://PROJECT, or http://HOST:PORT/PROJECT for an emulator",
    extra="firestore",
    summary="a Firestore database: JSON-lines exports of every document (or the Admin API's managed export)",
    formats="drill.stores.firestore.formats:READER",  # managed-export folders (gcloud firestore export)
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.firestore import FirestoreStore, project_id`), imported when first
    asked for."""
    for module in ("drill.stores.firestore.store", "drill.stores.firestore.common"):
        found = vars(importlib.import_module(module))
        if name in found:
            return found[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
