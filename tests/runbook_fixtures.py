"""Backups in the seed runbooks' formats, made as production makes them: by the native tools, from servers the
test starts itself (tests/live_servers.py), never by drill.

- PostgreSQL: `pg_dump | gzip`, `pg_dump -Fc`, `pg_basebackup -Ft -X fetch -D - | gzip` plus archived WAL;
- Redis: `redis-cli SAVE`, then a copy of dump.rdb; a copy of the AOF folder (appendonlydir/);
- MongoDB: mongodump is not obtainable here, so its documented layouts are written with pymongo's bson:
  the folder (`<db>/<coll>.bson` + `.metadata.json`), `tar -czf` of it, and `--archive` (mongo-tools
  common/archive/spec.md) with or without gzip, with the CRC-64 (Go's crc64.ECMA) computed here;
- Docker volumes and folders of files: `tar -czf NAME.tar.gz -C DIR .` (GNU tar), certificates by `openssl req`;
- Firestore: the emulator's own export endpoint (the managed-export layout);
- GCS: a dated copy of every object into a backup bucket, server-side, as gsutil's `cp`/`rewrite` do.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.live_servers import LiveFirestore, LivePostgres, LiveRedis


def stamp(when: float | None = None) -> str:
    """The runbook's YYYYmmdd_HHMMSS (UTC)."""
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime(time.time() if when is None else when))


def sha256sum(path: Path) -> str:
    """The sha256 of a file as coreutils' sha256sum prints it (the oracle for drill's evidence)."""
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def folder_sha256(folder: Path) -> str:
    """`cd FOLDER && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`."""
    script = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"
    done = subprocess.run(["sh", "-c", script], cwd=folder, capture_output=True, text=True, check=True,
                          env={**os.environ, "LC_ALL": "C"})
    return done.stdout.split()[0]


def tar_gz(source: Path, target: Path) -> Path:
    """`tar -czf TARGET -C SOURCE .`, as the runbook's volume and config backups are made."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-czf", str(target), "-C", str(source), "."], check=True, capture_output=True)
    return target


# -- PostgreSQL -------------------------------------------------------------------------------------------

def pg_dump_gz(pg: LivePostgres, database: str, target: Path) -> Path:
    """`pg_dump | gzip > userdb_YYYYmmdd_HHMMSS.sql.gz` (the runbook's cron job), through a shell pipe."""
    target.parent.mkdir(parents=True, exist_ok=True)
    script = (f'"{pg.bin / "pg_dump"}" -h 127.0.0.1 -p {pg.port} -U {pg.SUPERUSER} -d {database} --no-owner '
              f'| gzip > "{target}"')
    subprocess.run(["bash", "-o", "pipefail", "-c", script], check=True, capture_output=True,
                   env={**os.environ, "PGPASSWORD": pg.SUPER_PASSWORD})
    return target


def pg_dump_custom(pg: LivePostgres, database: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(pg.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.SUPERUSER, "-d",
                    database, "-Fc", "--no-owner", "-f", str(target)], check=True, capture_output=True,
                   env={**os.environ, "PGPASSWORD": pg.SUPER_PASSWORD})
    return target


def archive_wal(pg: LivePostgres, archive: Path | None = None) -> Path:
    """Turn WAL archiving on (archive_mode, archive_command into a folder the server owns) and restart: the
    runbook's WAL archive. Returns the folder (by default inside the server's own folder)."""
    archive = archive or pg.root / "wal-archive"
    archive.mkdir()
    if pg._account:
        os.chown(archive, pg._account.pw_uid, pg._account.pw_gid)
    pg.psql("ALTER SYSTEM SET wal_level = 'replica'")
    pg.psql("ALTER SYSTEM SET archive_mode = 'on'")
    # Copied under a temporary name, then renamed: a segment is never seen half-written in the archive.
    pg.psql(f"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f.tmp && "
            f"mv {archive}/%f.tmp {archive}/%f'")
    done = pg._as_server([str(pg.bin / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.log), "-w", "-t", "60", "restart",
                          "-m", "fast"])
    assert done.returncode == 0, done.stderr
    return archive


def switch_wal(pg: LivePostgres, archive: Path) -> None:
    """pg_switch_wal() and wait until the finished segment is archived (the runbook's archive is then current)."""
    segment = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 60
    while not (archive / segment).exists():
        assert time.monotonic() < deadline, f"WAL segment {segment} was not archived"
        time.sleep(0.05)


def pg_base_backup_tar_gz(pg: LivePostgres, target: Path) -> Path:
    """`pg_basebackup -Ft -X fetch -D - | gzip > base_backup_*.tar.gz`: the data directory as one gzip'd tar."""
    target.parent.mkdir(parents=True, exist_ok=True)
    script = (f'"{pg.bin / "pg_basebackup"}" -h 127.0.0.1 -p {pg.port} -U {pg.SUPERUSER} -D - -Ft -X fetch '
              f'-c fast | gzip > "{target}"')
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PGPASSWORD": pg.SUPER_PASSWORD})
    assert done.returncode == 0, done.stderr
    return target


# -- Redis ------------------------------------------------------------------------------------------------

def redis_cli(redis: LiveRedis, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "--no-auth-warning", "-a",
                           redis.PASSWORD, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def redis_rdb(redis: LiveRedis, target: Path) -> Path:
    """`redis-cli SAVE`, then a copy of dump.rdb: the runbook's dump_*.rdb."""
    assert redis_cli(redis, "SAVE") == "OK"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(redis.root / "dump.rdb", target)
    return target


def redis_aof_folder(redis: LiveRedis, target: Path) -> Path:
    """A copy of appendonlydir/ (Redis 7: manifest, base file, incremental AOF files) of an appendonly server."""
    redis_cli(redis, "BGREWRITEAOF")
    deadline = time.monotonic() + 60
    while "aof_rewrite_in_progress:1" in redis_cli(redis, "INFO", "persistence") or \
            "aof_rewrite_scheduled:1" in redis_cli(redis, "INFO", "persistence"):
        assert time.monotonic() < deadline, "BGREWRITEAOF did not finish"
        time.sleep(0.05)
    redis_cli(redis, "SET", "written:after-rewrite", "lands in the incremental AOF")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(redis.root / "appendonlydir", target)
    return target


# -- MongoDB: mongodump's documented layouts, written with bson ---------------------------------------------

def _crc64_ecma(data: bytes, crc: int = 0) -> int:
    """Go's hash/crc64 with the ECMA table (what mongodump writes): reflected 0xC96C5795D7870F42, inverted."""
    crc ^= 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _collections(client: Any, database: str) -> list[tuple[str, list[bytes], str]]:
    """(collection, raw BSON documents, metadata as canonical Extended JSON) of every collection."""
    from bson import json_util
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    db = client[database]
    out = []
    for name in sorted(db.list_collection_names()):
        raw = db.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
        documents = [doc.raw for doc in raw.find().sort("_id", 1)]
        indexes = [dict(ix) for ix in db[name].list_indexes()]
        metadata = json_util.dumps({"options": {}, "indexes": indexes, "uuid": "", "collectionName": name,
                                    "type": "collection"}, json_options=json_util.CANONICAL_JSON_OPTIONS)
        out.append((name, documents, metadata))
    return out


def mongodump_folder(client: Any, database: str, target: Path) -> Path:
    """`mongodump --out=TARGET`: TARGET/<db>/<coll>.bson and <coll>.metadata.json."""
    folder = target / database
    folder.mkdir(parents=True)
    for name, documents, metadata in _collections(client, database):
        (folder / f"{name}.bson").write_bytes(b"".join(documents))
        (folder / f"{name}.metadata.json").write_text(metadata, encoding="utf-8")
    return target


def mongodump_archive(client: Any, database: str, target: Path, *, gzipped: bool = False,
                      segment: int = 50) -> Path:
    """`mongodump --archive[=FILE] [--gzip]`, as the spec lays it out; documents in segments of `segment`."""
    import bson

    terminator = b"\xff\xff\xff\xff"
    collections = _collections(client, database)
    out = bytearray(struct.pack("<I", 0x8199E26D))
    out += bson.encode({"concurrent_collections": 4, "version": "0.1", "server_version": "7.0.0",
                        "tool_version": "100.9.4"})
    for name, documents, metadata in collections:
        out += bson.encode({"db": database, "collection": name, "metadata": metadata,
                            "size": sum(map(len, documents)), "type": "collection"})
    out += terminator
    for name, documents, _ in collections:
        crc = 0
        for start in range(0, len(documents), segment):
            out += bson.encode({"db": database, "collection": name, "EOF": False, "CRC": bson.Int64(0)})
            for raw in documents[start:start + segment]:
                out += raw
                crc = _crc64_ecma(raw, crc)
            out += terminator
        signed = crc - (1 << 64) if crc >= 1 << 63 else crc
        out += bson.encode({"db": database, "collection": name, "EOF": True, "CRC": bson.Int64(signed)})
        out += terminator
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(bytes(out)) if gzipped else bytes(out))
    return target


def seed_notifications(client: Any, database: str) -> dict[str, int]:
    """notifydb as the runbook knows it: notifications, users, templates (with an index); the counts written."""
    import datetime as dt

    db = client[database]
    db["users"].insert_many([{"_id": f"u{i:03d}", "email": f"user{i}@example.test", "name": f"Zoë {i}"}
                             for i in range(80)])
    db["templates"].insert_many([{"_id": f"tpl-{i}", "channel": ("email", "sms", "push")[i % 3],
                                  "body": {"text": f"Hallo {{name}} — {i}"}} for i in range(20)])
    db["notifications"].insert_many([{"user": f"u{i % 80:03d}", "template": f"tpl-{i % 20}", "n": i,
                                      "sent_at": dt.datetime(2026, 1, 1) + dt.timedelta(minutes=i),
                                      "payload": {"amount": i * 0.25, "tags": [f"t{j}" for j in range(i % 4)]}}
                                     for i in range(200)])
    db["notifications"].create_index([("user", 1), ("sent_at", -1)])
    return {"users": 80, "templates": 20, "notifications": 200}


# -- Firestore --------------------------------------------------------------------------------------------

def firestore_export(firestore: LiveFirestore, target: Path) -> Path:
    """The emulator's export endpoint (the managed-export layout): TARGET/firestore_export_<time>/...; returns the
    export folder itself (what `gcloud firestore export gs://bucket/DATE` writes under DATE/)."""
    target.mkdir(parents=True)
    body = json.dumps({"database": f"projects/{firestore.project}/databases/(default)",
                       "export_directory": str(target)}).encode()
    request = urllib.request.Request(f"http://{firestore.host}/emulator/v1/projects/{firestore.project}:export",
                                     data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    [export] = [p for p in target.iterdir() if p.is_dir()]
    return export


# -- certificates and configuration ------------------------------------------------------------------------

def certificate(folder: Path, days: int, name: str = "cert.pem", *, subject: str = "/CN=eyewear.example") -> Path:
    """A self-signed certificate valid for `days` days from now, by `openssl req -x509` (with its key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / name), "-days", str(days), "-subj", subject], check=True,
                   capture_output=True)
    return folder / name


def expired_certificate(folder: Path, name: str = "cert.pem") -> Path:
    """A certificate whose Not After is already past: `openssl x509 -req -days -1` signs one that ended a day
    before it began (now)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "key.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    csr = folder / "cert.csr"
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=expired.example", "-out", str(csr)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-signkey", str(key), "-days", "-1", "-out",
                    str(folder / name)], check=True, capture_output=True)
    csr.unlink()
    return folder / name
