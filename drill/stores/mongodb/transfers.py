"""Backups and restores of a MongoDB store: mongodump/mongorestore when they are on PATH, else every collection
streamed with pymongo in mongodump's own layout; every backup checked before the target is touched.

MongoTransfers is a part of MongoStore (store.py), kept here so that each file holds one concern.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import bson
import pymongo
from bson.json_util import JSONMode, JSONOptions
from bson.json_util import dumps as json_dumps
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from drill import found_backups, safe_paths
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.redact import redact_text
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Progress,
    Store,
    no_progress,
    require_new_restore_target,
    sha256_file,
)
from drill.stores.mongodb import formats as found_formats
from drill.stores.mongodb.dumps import (
    _RAW,
    SUMS_FILE,
    _open,
    dump_database_dir,
    dumped_collections,
    file_stem,
    fingerprint_of_dump,
    write_sums,
)
from drill.stores.mongodb.server import Document, MongoServer
from drill.tool_env import minimal_env

BATCH = 1000
_EXTENDED = JSONOptions(json_mode=JSONMode.CANONICAL)


class MongoTransfers(Guarded):
    """Backup, verification and restores of MongoStore, whose fields and methods these use."""

    server: MongoServer
    database_name: str
    gzip: bool
    scratch: list[str]

    if TYPE_CHECKING:  # MongoStore's own
        def database(self) -> Database[Document]: ...

        def fingerprint(self) -> Fingerprint: ...

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / backup_id
        partial = directory / f".{backup_id}.partial"
        server_version = self.server.server_version()
        before = self.fingerprint()
        consistent_at = time.time()
        try:
            if shutil.which("mongodump"):
                tool = self._mongodump(partial, progress)
            else:
                self._stream_dump(partial, progress)
                tool = {"pymongo": pymongo.version}
            fingerprint = fingerprint_of_dump(dump_database_dir(partial))
            differences = self._differences_from_store(before, fingerprint, progress)
            digest = write_sums(partial)
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial, final)  # only a complete dump gets a name that looks like a backup
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
        return BackupArtifact(
            id=backup_id, store=self.name, kind="mongodb", format="mongodump-gzip" if self.gzip else "mongodump",
            path=final, sha256=digest, size=size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions=tool, server_version=server_version, fingerprint=fingerprint,
            differs_from_store=tuple(differences))

    def _differences_from_store(self, before: Fingerprint, dump: Fingerprint, progress: Progress) -> list[str]:
        """How the dump differs from the store right before it, one line per collection: [] when it is the same.

        MongoDB without a replica set has no snapshot, so a live store's writers may change it during the dump;
        the store is read again to tell: a collection that differs in the dump but not in the store (before and
        after the dump alike) has no such excuse, and the backup fails naming it. A throwaway store has no writer
        but drill, so any difference fails it. What a writer explains is kept as the backup's evidence.
        """
        if dump.parts == before.parts:
            return []
        after = self.fingerprint()
        lines, unexplained = [], []
        for part in sorted(before.parts.keys() | dump.parts.keys()):
            was, dumped = before.parts.get(part), dump.parts.get(part)
            if was == dumped:
                continue
            line = (f"collection {part}: {_held(was)} in the store right before the dump, {_held(dumped)} in the "
                    f"dump{' (content differs)' if was and dumped and was.count == dumped.count else ''}")
            if after.parts.get(part) == was:
                unexplained.append(f"{line}; the store did not change during the dump")
            else:
                lines.append(f"{line}; the store changed during the dump (a writer), the backup holds what it read")
        listed = "".join(f"\n  - {line}" for line in unexplained + lines)
        if unexplained:
            raise BackupError(f"the backup of {self.name!r} does not hold what the store held:{listed}\nnothing "
                              f"wrote to those collections during the dump, so the dump itself is wrong: the backup "
                              f"is refused (check the server's log and the disk it was written to, then take it again)")
        if not self.config.is_live:
            raise BackupError(f"the data of {self.name!r} changed while it was being backed up, and it is a "
                              f"throwaway store only drill writes to:{listed}")
        for line in lines:
            progress(f"{self.name}: the backup differs from the store: {line}")
        return lines

    def _stream_dump(self, partial: Path, progress: Progress) -> None:
        db = self.database()
        out = partial / self.database_name
        out.mkdir(parents=True)
        suffix = ".gz" if self.gzip else ""
        try:
            for info in db.list_collections():
                coll = str(info["name"])
                if coll.startswith("system.") or info.get("type", "collection") != "collection":
                    continue
                count = 0
                with _open(out / f"{file_stem(coll)}.bson{suffix}", "wb") as handle:
                    raw = cast("Collection[RawBSONDocument]", db.get_collection(coll, codec_options=_RAW))
                    for document in raw.find().sort("_id", 1):
                        handle.write(document.raw)
                        count += 1
                indexes = [{"v": int(ix.get("v", 2)), **{k: v for k, v in ix.items() if k not in ("v", "ns")}}
                           for ix in db[coll].list_indexes()]
                metadata = {"options": dict(info.get("options", {})), "indexes": indexes, "uuid": "",
                            "collectionName": coll, "type": "collection"}
                with _open(out / f"{file_stem(coll)}.metadata.json{suffix}", "wb") as handle:
                    handle.write(json_dumps(metadata, json_options=_EXTENDED).encode("utf-8"))
                progress(f"dumped {count} documents of {self.database_name}.{coll}")
        except PyMongoError as exc:
            raise BackupError(f"dump of {self.name!r} failed: {redact_text(str(exc))}") from None

    def _tool_config(self, stack: contextlib.ExitStack) -> str:
        """A mongodump/mongorestore --config file holding the URI (so no password shows in `ps`)."""
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drill-mongo-tool-")))
        path = directory / "config.yaml"
        path.touch(mode=0o600)
        path.write_text(f"uri: {json.dumps(self.server.uri)}\n", encoding="utf-8")
        return str(path)

    def _run_tool(self, args: list[str], what: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, env=minimal_env())  # the URI is in a 0600 file
        if done.returncode != 0:
            error = BackupError if what == "mongodump" else StoreError
            raise error(f"{what} of {self.name!r} failed (exit {done.returncode}): "
                        f"{redact_text(done.stderr.strip()[-2000:])}")

    def _mongodump(self, partial: Path, progress: Progress) -> dict[str, str]:
        tool = shutil.which("mongodump")
        assert tool is not None
        progress(f"mongodump of {self.database_name}")
        with contextlib.ExitStack() as stack:
            args = [tool, f"--config={self._tool_config(stack)}", f"--db={self.database_name}",
                    f"--out={partial}", *(["--gzip"] if self.gzip else [])]
            self._run_tool(args, "mongodump")
        return {"mongodump": _tool_version(tool)}

    # -- verify and restore ---------------------------------------------------------------------------

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """Every file's sha256 and every BSON document, before any target is touched."""
        if found_backups.is_found(artifact):  # made outside drill: its sha256 as found, every document decoded
            found_backups.check_found(artifact)
            return
        root = artifact.path
        if not root.is_dir():
            raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing: {root}")
        sums = root / SUMS_FILE
        if artifact.sha256 is not None:
            if not sums.is_file():
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} has no {SUMS_FILE} ({root})")
            digest = sha256_file(sums)
            if digest != artifact.sha256:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: {SUMS_FILE} has sha256 "
                                  f"{digest}, not {artifact.sha256} recorded when it was taken ({root})")
        if sums.is_file():
            listed: set[str] = set()
            for line in sums.read_text(encoding="utf-8").splitlines():
                expected, _, rel = line.partition("  ")
                listed.add(rel)
                path = root / rel
                if not path.is_file():
                    raise BackupError(f"backup {artifact.id} of {artifact.store!r} is missing file {rel} ({root})")
                actual = sha256_file(path)
                if actual != expected:
                    raise BackupError(f"backup {artifact.id} of {artifact.store!r} is corrupt: {rel} has sha256 "
                                      f"{actual}, not {expected} recorded when it was taken")
            unlisted = [p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.is_file() and p.name != SUMS_FILE and p.relative_to(root).as_posix() not in listed]
            if unlisted:
                raise BackupError(f"backup {artifact.id} of {artifact.store!r} holds files it was not taken with: "
                                  f"{', '.join(sorted(unlisted))}")
        for coll in dumped_collections(dump_database_dir(root)):
            try:
                for _ in coll.documents():
                    pass
            except (bson.errors.BSONError, OSError, EOFError) as exc:
                raise BackupError(f"backup {artifact.id}: {coll.data.name} does not decode completely: {exc}") from None

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        from drill.stores.mongodb.store import MongoStore  # store.py imports this module

        assert isinstance(self, MongoStore)  # the only class made of these parts
        if into is not None:
            require_new_restore_target(self, into)  # `into` its own database would drop it with no safety copy
        self.verify_backup(artifact)  # before the target is touched
        target = into or self.database_name
        target_store = self if target == self.database_name else MongoStore(
            name=into or self.name, config=replace(self.config, name=into or self.name, destructive=True),
            server=self.server, database_name=target, gzip=self.gzip)
        if self.server.has_database(target):
            if target == self.database_name:
                self.require_destructive("overwrite")
            elif into is not None and self.config.is_live:
                raise StoreError(f"restore target database {target!r} already exists on the live server of "
                                 f"{self.name!r}; name a new database (drill never overwrites one it did not create)")
            self.server.client().drop_database(target)
        if target != self.database_name and self.config.is_live:
            self.scratch.append(target)
        if found_backups.is_found(artifact):
            self._restore_found(artifact, target, progress)
            return target_store
        db_dir = dump_database_dir(artifact.path)
        if shutil.which("mongorestore"):
            self._mongorestore(artifact.path, db_dir.name, target, progress)
        else:
            self._stream_restore(db_dir, target, progress)
        return target_store

    def _restore_found(self, artifact: BackupArtifact, target: str, progress: Progress) -> None:
        """A backup made outside drill (a tar.gz, an archive, a folder) laid out as a mongodump folder in a private
        temporary folder, then restored like drill's own."""
        work = safe_paths.private_temp("drill-mongo-found-")
        try:
            progress(f"reading {artifact.path.name} ({artifact.format})")
            db_dir = found_formats.as_dump_folder(artifact.path, artifact.format, work, self.database_name)
            self._stream_restore(db_dir, target, progress)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _stream_restore(self, db_dir: Path, target: str, progress: Progress) -> None:
        db = self.server.db(target)
        try:
            for coll in dumped_collections(db_dir):
                options = dict(coll.metadata.get("options", {}))
                db.create_collection(coll.name, **options)
                batch: list[RawBSONDocument] = []
                restored = 0
                for document in coll.documents():
                    batch.append(document)
                    if len(batch) >= BATCH:
                        db[coll.name].insert_many(batch, ordered=False)
                        restored += len(batch)
                        batch = []
                if batch:
                    db[coll.name].insert_many(batch, ordered=False)
                    restored += len(batch)
                models = [_index_model(ix) for ix in coll.metadata.get("indexes", []) if ix.get("name") != "_id_"
                          and dict(ix["key"]) != {"_id": 1}]
                if models:
                    db[coll.name].create_indexes(models)
                progress(f"restored {restored} documents and {len(models)} indexes into {target}.{coll.name}")
        except PyMongoError as exc:
            raise StoreError(f"restore into {target!r} failed: {redact_text(str(exc))}") from None

    def _mongorestore(self, root: Path, source_db: str, target: str, progress: Progress) -> None:
        tool = shutil.which("mongorestore")
        assert tool is not None
        gz = any(p.name.endswith(".gz") for p in (root / source_db).iterdir())
        progress(f"mongorestore {source_db} into {target}")
        with contextlib.ExitStack() as stack:
            args = [tool, f"--config={self._tool_config(stack)}", f"--nsInclude={source_db}.*",
                    f"--nsFrom={source_db}.*", f"--nsTo={target}.*", "--drop", *(["--gzip"] if gz else []),
                    str(root)]
            self._run_tool(args, "mongorestore")



def _index_model(index: dict[str, Any]) -> IndexModel:
    extra = {k: v for k, v in index.items() if k not in ("v", "key", "ns")}
    return IndexModel(list(dict(index["key"]).items()), **extra)


def _tool_version(tool: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    return "unknown"


def _held(part: PartPrint | None) -> str:
    return f"{part.count} documents" if part is not None else "absent"
