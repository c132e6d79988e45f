"""The self-test's planted change in a MongoDB copy: one more field in one document, then the original put back.

The undo replaces the document with its original raw BSON (RawBSONDocument), so field order and every
type (int32 and int64, doubles, dates) are exactly what they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from drill.errors import StoreError
from drill.redact import redact_text
from drill.stores.capabilities import PlantedChange

if TYPE_CHECKING:
    from drill.stores.mongodb.store import MongoStore

FIELD = "drill_self_test"  # the field a self-test adds to one document of a restored copy
_RAW = CodecOptions(document_class=RawBSONDocument)


def plant_change(store: MongoStore, collections: list[str]) -> PlantedChange:
    """One document of the first non-empty collection gets one more field."""
    db = store.database()
    for coll in collections:
        original: RawBSONDocument | None = db.get_collection(coll, codec_options=_RAW).find_one()  # type: ignore[assignment]
        if original is None:
            continue
        key: dict[str, Any] = {"_id": original["_id"]}
        try:
            db[coll].update_one(key, {"$set": {FIELD: True}})
        except PyMongoError as exc:
            raise StoreError(f"the self-test could not change a document of {store.name!r}: "
                             f"{redact_text(str(exc))}") from None

        def undo(coll: str = coll, key: dict[str, Any] = key, original: RawBSONDocument = original) -> None:
            store.database().get_collection(coll, codec_options=_RAW).replace_one(key, original)

        return PlantedChange(part=coll, item=f"document _id {original['_id']!r} of collection {coll}", undo=undo)
    raise StoreError(f"the self-test found no document to change in {store.name!r}")
