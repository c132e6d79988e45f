"""GCS counts by name pattern and the self-test's planted change (one object's bytes, same size and attributes).

The pattern reads as gsutil's (drill.name_patterns: `*` within one `/` segment, `**` across them),
listed under the pattern's literal prefix only. The planted change flips the last byte of the
first object (so its size stays the same and only its content hash can see it), keeping its
content type, headers and metadata; the undo uploads the original bytes with the same attributes,
which gives the same md5 and crc32c back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from drill import name_patterns
from drill.errors import StoreError
from drill.stores.capabilities import PlantedChange
from drill.stores.gcs.objects import ATTRIBUTES, INTERNAL_PREFIX, part_of

if TYPE_CHECKING:
    from drill.stores.gcs.store import GcsStore


def count_matching(store: GcsStore, pattern: str) -> int:
    """Objects whose name matches the glob `pattern` (drill's own `.drill/` objects left out)."""
    prefix = name_patterns.literal_prefix(pattern)
    return sum(1 for blob in store._list(prefix or None)
               if not blob.name.startswith(INTERNAL_PREFIX) and name_patterns.matches(pattern, blob.name))


def plant_change(store: GcsStore) -> PlantedChange:
    blob = next((b for b in store._list() if not b.name.startswith(INTERNAL_PREFIX)), None)
    if blob is None:
        raise StoreError(f"the self-test found no object to change in gs://{store.bucket}")
    try:
        original = blob.download_as_bytes(raw_download=True)  # the stored bytes, never transcoded
        changed = original[:-1] + bytes([original[-1] ^ 0xFF]) if original else b"~"
        _upload(store, blob, changed)
    except gexc.GoogleAPICallError as exc:
        raise StoreError(f"the self-test could not change gs://{store.bucket}/{blob.name}: {exc}") from None

    def undo() -> None:
        _upload(store, blob, original)

    return PlantedChange(part=part_of(blob.name), item=f"object {blob.name}", undo=undo)


def _upload(store: GcsStore, like: Any, data: bytes) -> None:
    """Write `data` as the object `like` names, with `like`'s content type, headers and metadata."""
    target = store._bucket().blob(like.name)
    for key, attr in ATTRIBUTES:
        if key not in ("size", "md5", "crc32c", "content_type"):
            setattr(target, attr, getattr(like, attr) or None)
    target.upload_from_string(data, content_type=like.content_type)
