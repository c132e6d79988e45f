"""Where a MongoDB store's database lives (MongoServer: a connection URI, never printed) and its RPO markers
(MongoMarkerSink: documents of drill_markers).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pymongo
from pymongo.database import Database
from pymongo.errors import PyMongoError

from drill.errors import StoreError
from drill.redact import redact_text
from drill.stores.base import (
    Marker,
)

MARKER_COLLECTION = "drill_markers"

Document = dict[str, Any]



@dataclass
class MongoServer:
    """Where a MongoDB store's database lives: a connection URI (never printed) and a redacted description."""

    uri: str
    description: str = ""
    _client: pymongo.MongoClient[Document] | None = field(default=None, repr=False)

    def client(self) -> pymongo.MongoClient[Document]:
        if self._client is None:
            self._client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=15000, connectTimeoutMS=15000,
                                               tz_aware=False, appname="drill")
        return self._client

    def db(self, name: str) -> Database[Document]:
        return self.client()[name]

    def server_version(self) -> str:
        try:
            return str(self.client().admin.command("buildInfo").get("version", "unknown"))
        except PyMongoError as exc:
            raise StoreError(f"cannot reach MongoDB at {self.description}: {redact_text(str(exc))}") from None

    def has_database(self, name: str) -> bool:
        # Not list_database_names(): on nx-27017 a dropped database can reappear there.
        return bool(self.db(name).list_collection_names())

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


class MongoMarkerSink:
    """RPO markers as documents {_id: seq, written_at: client epoch} in drill_markers."""

    def __init__(self, server: MongoServer, database: str) -> None:
        self.server = server
        self.database = database

    def prepare(self) -> None:
        self.server.db(self.database)[MARKER_COLLECTION].find_one()  # fail now, not in the writer thread

    def write(self, marker: Marker) -> None:
        self.server.db(self.database)[MARKER_COLLECTION].insert_one({"_id": marker.seq,
                                                                     "written_at": marker.written_at})

    def newest(self) -> Marker | None:
        found = list(self.server.db(self.database)[MARKER_COLLECTION].find().sort("_id", -1).limit(1))
        return Marker(int(found[0]["_id"]), float(found[0]["written_at"])) if found else None

    def close(self) -> None:
        return None


# -- canonical content -----------------------------------------------------------------------------------
