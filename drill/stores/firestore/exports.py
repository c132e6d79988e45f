"""Restoring a managed-export folder (gcloud firestore export) found by a glob: imported into a throwaway emulator.

The export's `output-N` files hold documents in Firestore's internal entity encoding; the one
program that reads them faithfully is Firestore itself. So drill starts a throwaway Cloud Firestore
emulator, imports the export into a scratch project of it (the emulator's import endpoint, which
reads the same layout as `gcloud firestore import`), reads every document back into a private
temporary JSON-lines file of drill's own format (types kept), and restores that into the target,
the same way as drill's own backups. The emulator and the file are removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from dataclasses import replace
from typing import TYPE_CHECKING

from drill import safe_paths
from drill.errors import BackupError
from drill.stores.base import BackupArtifact, Progress
from drill.stores.firestore.formats import export_root, overall_metadata, source_project

if TYPE_CHECKING:
    from drill.stores.firestore.store import FirestoreStore

SCRATCH_PROJECT = "drill-export-import"


def import_export(artifact: BackupArtifact, target: FirestoreStore, progress: Progress) -> None:
    """Restore the export folder `artifact.path` into `target` (emptied or new) through a throwaway emulator."""
    from drill.stores.firestore.local import LocalFirestoreEmulator
    from drill.stores.firestore.store import FirestoreServer, FirestoreStore
    from drill.stores.firestore.transfers import Transfers

    root = export_root(artifact.path)
    if root is None:
        raise BackupError(f"{artifact.path} is not a Firestore export folder")
    work = safe_paths.private_temp("drill-firestore-export-")
    emulator = LocalFirestoreEmulator()
    try:
        emulator.start()
        progress(f"importing {artifact.path.name} into a throwaway Firestore emulator on {emulator.host}")
        # Imported under the project id it was exported from, so that references between its documents stay
        # readable; they are pointed at the target's project when written there.
        project = source_project(root) or SCRATCH_PROJECT
        _post_import(emulator.host, project, str(overall_metadata(root)))
        server = FirestoreServer(emulator_host=emulator.host, description="throwaway import emulator")
        source = FirestoreStore(name=f"{target.name}-export", config=replace(target.config, provision="local"),
                                server=server, project=project)
        try:
            copied = Transfers(source).backup(work, progress)
        finally:
            server.close()
        progress(f"writing {copied.fingerprint.total if copied.fingerprint else '?'} documents of the export into "
                 f"project {target.project}")
        Transfers(target)._write_backup(copied.path, progress)
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def _post_import(host: str, project: str, metadata: str) -> None:
    body = json.dumps({"database": f"projects/{project}/databases/(default)", "export_directory": metadata}).encode()
    request = urllib.request.Request(f"http://{host}/emulator/v1/projects/{project}:import", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()[:500]
        raise BackupError(f"the Firestore emulator refused to import {metadata}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise BackupError(f"importing {metadata} into the throwaway Firestore emulator failed: {exc}") from None
