"""What the Firestore adapter and its transfers share: formats, the bulk writer's batch and error callback,
project ids."""

from __future__ import annotations

import re
from typing import Any

MANAGED_FORMAT = "firestore-managed-export"
FLUSH_EVERY = 2000  # bulk-writer operations between flushes (bounds its queue)


def _record_failure(failures: list[str], error: Any) -> bool:
    """BulkWriter error callback: retry transient failures a few times, remember the rest."""
    if getattr(error, "attempts", 0) < 5 and getattr(error, "code", None) in (4, 8, 10, 13, 14):
        return True
    failures.append(f"{getattr(error.operation, 'reference', None) and error.operation.reference.path}: "
                    f"{error.message}")
    return False


def _valid_project_id(project: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", project))


def project_id(name: str) -> str:
    """A store name as a project id: lower case, anything but letters, digits and hyphens as `-`
    (`userdb_restored` -> `userdb-restored`); project ids allow nothing else, the emulator included."""
    converted = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not converted or not converted[0].isalpha():
        converted = f"p-{converted}".rstrip("-")
    return converted
