"""Docker volumes: tar.gz backups through a helper container, restores into the same or a new volume.

As in the seed runbook, a volume is read and written through a helper container (image
`alpine` by default, `image` in drill.toml) that mounts it at /volume. drill asks the engine
for the helper's /volume as a tar stream (the engine's archive API: it works with any engine,
local or remote, and needs nothing inside the image) and rewrites it on the fly into a
runbook-compatible backup: a gzip'd tar of `./<path>` entries, the same layout as
`tar -czf backup.tar.gz -C /volume .`, with its sha256 recorded. The fingerprint is taken from the
very bytes written into the backup.

Restore: the backup is read completely first (sha256, gzip CRC, tar structure, no absolute
or `..` paths) before the target is touched; then the target volume is emptied (or made) and the
archive is extracted into it by the engine. Fingerprint: for every entry, its path, type, size,
mode, owner and sha256 of the content (symlinks: their target); one part per top-level directory.
`stop_containers` are stopped around backups and restores (the runbook stops services first)
and started again afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from drill import found_backups, tar_safety
from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.stores.base import BackupArtifact, Guarded, Marker, Progress, Store, check_backup_file, no_progress
from drill.stores.capabilities import PlantedChange
from drill.stores.volume import KIND, VolumeOptions, checks

MOUNT = "/volume"
ROOT_PART = "."
MARKER_DIR = ".drill-markers"
SCHEMA_LIMIT = 5000  # per-file entries kept in a fingerprint (beyond: counts and content hash only)
CHUNK = 1 << 20


def _member_path(name: str) -> str:
    """`volume/a/b` (engine archive) or `./a/b` (runbook tar) -> `a/b`; the root itself -> ''."""
    name = name.lstrip("/")
    for prefix in ("volume/", "./"):
        if name.startswith(prefix):
            return name[len(prefix):].rstrip("/")
    return "" if name in ("volume", ".", "") else name.rstrip("/")


def _escapes(member: tarfile.TarInfo) -> str | None:
    """How a tar member would reach outside the volume: the rules every kind applies (drill.tar_safety)."""
    problem = tar_safety.escape(member)
    return problem.replace("its folder", "the volume") if problem else None


def _entry_kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "special"


@dataclass
class _Printer:
    """Builds a volume fingerprint from tar members as they stream past."""

    parts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        if not path or path == MARKER_DIR or path.startswith(MARKER_DIR + "/"):
            return
        kind = _entry_kind(member)
        top = path.split("/", 1)[0] if ("/" in path or kind == "dir") else ROOT_PART
        detail = f"{kind}, mode {member.mode & 0o7777:04o}, owner {member.uid}:{member.gid}"
        if kind == "file":
            digest = hashlib.sha256()
            if data is not None:
                while block := data.read(CHUNK):
                    digest.update(block)
            detail += f", {member.size} bytes, sha256 {digest.hexdigest()[:16]}"
            self.files[top] = self.files.get(top, 0) + 1
        elif kind in ("symlink", "hardlink"):
            detail += f", -> {member.linkname}"
        self.parts.setdefault(top, []).append((path, detail))
        self.files.setdefault(top, 0)

    def fingerprint(self) -> Fingerprint:
        out: dict[str, PartPrint] = {}
        total_entries = sum(len(v) for v in self.parts.values())
        for top, entries in self.parts.items():
            entries.sort()
            content = hashlib.sha256("\n".join(f"{p}\t{d}" for p, d in entries).encode()).hexdigest()
            schema = {p: d for p, d in entries} if total_entries <= SCHEMA_LIMIT else {}
            out[top] = PartPrint(count=self.files.get(top, 0), content=content, schema=schema)
        return KIND.fingerprint(out, taken_at=time.time())


class _StreamReader(io.RawIOBase):
    """A file-like view of the engine's archive stream (an iterator of byte chunks)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        block = bytes(data)
        self.digest.update(block)
        self.target.write(block)
        return len(block)


@dataclass
class VolumeStore(Guarded):
    """A named Docker volume on the engine `client` talks to."""

    name: str
    config: StoreConfig
    client: Any  # docker.DockerClient
    volume: str
    helper_image: str
    kind: str = KIND.kind
    closers: list[Callable[[], object]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # labels for volumes drill makes (owner)

    def describe(self) -> dict[str, str]:
        return {"kind": "volume", "location": f"Docker volume {self.volume}", "helper_image": self.helper_image,
                "server_version": self.engine_version(), "provision": self.config.provision}

    def engine_version(self) -> str:
        with contextlib.suppress(Exception):
            return f"Docker engine {self.client.version().get('Version', 'unknown')}"
        return "unknown"

    # -- helper containers ----------------------------------------------------------------------------------

    def _volume_exists(self, name: str | None = None) -> bool:
        import docker.errors

        try:
            self.client.volumes.get(name or self.volume)
            return True
        except docker.errors.NotFound:
            return False

    @contextlib.contextmanager
    def _helper(self, volume: str | None = None, read_only: bool = False) -> Iterator[Any]:
        """A created (not started) helper container with the volume at /volume; removed afterwards."""
        from drill.provision.container import owner_labels

        name = volume or self.volume
        try:
            helper = self.client.containers.create(
                self.helper_image, command=["true"], labels=owner_labels(), network_mode="none",
                volumes={name: {"bind": MOUNT, "mode": "ro" if read_only else "rw"}})
        except Exception as exc:
            raise StoreError(f"cannot create a helper container ({self.helper_image}) for volume {name!r}: "
                             f"{_short(exc)}; set `image` under [stores.{self.name}] to an image the engine "
                             f"has (default: alpine)") from None
        try:
            yield helper
        finally:
            with contextlib.suppress(Exception):
                helper.remove(force=True)

    def _sh(self, script: str, volume: str | None = None) -> None:
        from drill.provision.container import owner_labels

        name = volume or self.volume
        try:
            container = self.client.containers.create(
                self.helper_image, command=["sh", "-c", script], labels=owner_labels(), network_mode="none",
                volumes={name: {"bind": MOUNT, "mode": "rw"}})
        except Exception as exc:
            raise StoreError(f"cannot create a helper container ({self.helper_image}) for volume {name!r}: "
                             f"{_short(exc)}") from None
        try:
            container.start()
            code = int(container.wait(timeout=600).get("StatusCode", 1))
            if code != 0:
                logs = container.logs().decode(errors="replace").strip()
                raise StoreError(f"helper container ({self.helper_image}) `sh -c {script!r}` on volume {name!r} "
                                 f"exited {code}: {logs[-1000:]}")
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _stream(self, volume: str | None = None, folder: str = ".") -> Iterator[tuple[str, tarfile.TarInfo,
                                                                                     IO[bytes] | None]]:
        """Every entry of the volume (path relative to its root), read through the engine's archive API; with
        `folder`, only that top-level folder's (nothing when it does not exist)."""
        import docker.errors

        with self._helper(volume, read_only=True) as helper:
            try:
                chunks, _stat = helper.get_archive(f"{MOUNT}/{folder}", chunk_size=CHUNK)
            except docker.errors.NotFound:
                if folder == ".":
                    raise StoreError(f"volume {volume or self.volume!r} cannot be read: its root is missing") from None
                return
            except Exception as exc:
                raise StoreError(f"cannot read volume {volume or self.volume!r}: {_short(exc)}") from None
            reader = io.BufferedReader(_StreamReader(iter(chunks)), buffer_size=CHUNK)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                for member in archive:
                    data = archive.extractfile(member) if member.isfile() else None
                    yield _member_path(member.name), member, data

    # -- data -----------------------------------------------------------------------------------------------

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        """`count` deterministic files under seed/dNN/ (modes 0644/0600/0755, sizes 0..~4 KiB, binary too)."""
        self.require_writes("seed")
        if "seed" in self.fingerprint().parts:
            raise StoreError(f"cannot seed {self.name!r}: volume {self.volume} already holds seed/; seed an empty "
                             f"volume")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            dirs = sorted({f"seed/d{i % 10:02d}" for i in range(count)} | {"seed"})
            for directory in dirs:
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                archive.addfile(info)
            for i in range(count):
                data = _seed_content(i)
                info = tarfile.TarInfo(f"seed/d{i % 10:02d}/file-{i:06d}.{'bin' if i % 5 == 4 else 'txt'}")
                info.size, info.mode, info.mtime = len(data), (0o644, 0o600, 0o755)[i % 3], 0
                archive.addfile(info, io.BytesIO(data))
        self._put(buffer.getvalue())
        progress(f"seeded {count} files into volume {self.volume}")

    def _put(self, tar_bytes: bytes | IO[bytes], volume: str | None = None) -> None:
        with self._helper(volume) as helper:
            try:
                ok = helper.put_archive(MOUNT, tar_bytes)
            except Exception as exc:
                raise StoreError(f"cannot write into volume {volume or self.volume!r}: {_short(exc)}") from None
            if not ok:
                raise StoreError(f"the engine refused to write into volume {volume or self.volume!r}")

    def count(self, part: str | None = None) -> int:
        printed = self.fingerprint()
        if part is None:
            return printed.total
        found = printed.parts.get(part.strip("/"))
        if found is None:
            raise StoreError(f"volume store {self.name!r} has no top-level directory {part!r}; it has: "
                             f"{', '.join(sorted(printed.parts)) or 'nothing'}")
        return found.count

    def fingerprint(self) -> Fingerprint:
        printer = _Printer()
        for path, member, data in self._stream():
            printer.add(path, member, data)
        return printer.fingerprint()

    # -- richer counts and the self-test (checks.py) -----------------------------------------------------------

    def count_matching(self, pattern: str) -> int:
        return checks.count_matching(self, pattern, MARKER_DIR)

    def plant_change(self) -> PlantedChange:
        return checks.plant_change(self, MARKER_DIR, ROOT_PART)

    # -- the files themselves (setup steps, planted faults) -------------------------------------------------

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.require_writes("write a file into")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            archive.addfile(info, io.BytesIO(data))
        self._put(buffer.getvalue())

    def remove_file(self, path: str) -> None:
        self.require_writes("remove a file from")
        self._sh(f"rm -f -- {_quote(MOUNT + '/' + path.lstrip('/'))}")

    def chmod(self, path: str, mode: int) -> None:
        self.require_writes("change a file mode in")
        self._sh(f"chmod {mode:o} -- {_quote(MOUNT + '/' + path.lstrip('/'))}")

    # -- containers that use the volume ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _services_stopped(self, progress: Progress) -> Iterator[None]:
        """Stop `stop_containers` (those running) and start them again afterwards, whatever happens."""
        stopped: list[Any] = []
        try:
            for name in VolumeOptions.of(self.config).stop_containers:
                try:
                    container = self.client.containers.get(name)
                except Exception as exc:
                    raise StoreError(f"volume store {self.name!r}: container {name!r} named in stop_containers "
                                     f"cannot be found: {_short(exc)}") from None
                container.reload()
                if container.status == "running":
                    progress(f"stopping container {name} (it uses volume {self.volume})")
                    container.stop(timeout=60)
                    stopped.append(container)
            yield
        finally:
            for container in stopped:
                progress(f"starting container {container.name} again")
                container.start()

    def containers_using(self, volume: str | None = None) -> list[str]:
        found = self.client.containers.list(all=True, filters={"volume": volume or self.volume})
        return sorted(str(c.name) for c in found)

    # -- backup and restore ---------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        directory.mkdir(parents=True, exist_ok=True)
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        final = directory / f"{backup_id}.tar.gz"
        partial = final.with_name(f".{final.name}.partial")
        printer = _Printer()
        with self._services_stopped(progress):
            consistent_at = time.time()
            try:
                with partial.open("wb") as raw:
                    hashing = _HashingWriter(raw)
                    with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0) as gz, \
                            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as out:
                        for path, member, data in self._stream():
                            member.name = "." if not path else f"./{path}"
                            if data is not None:
                                content = _spool(data)
                                printer.add(path, member, content)
                                content.seek(0)
                                out.addfile(member, content)
                                content.close()
                            else:
                                printer.add(path, member, None)
                                out.addfile(member)
                digest = hashing.digest.hexdigest()
                os.replace(partial, final)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        fingerprint = printer.fingerprint()
        progress(f"backed up volume {self.volume}: {fingerprint.total} files, {final.stat().st_size} bytes "
                 f"to {final}")
        return BackupArtifact(
            id=backup_id, store=self.name, kind="volume", format="tar.gz", path=final, sha256=digest,
            size=final.stat().st_size, created_at=time.time(), consistent_at=consistent_at,
            tool_versions={"helper_image": self.helper_image, "engine": self.engine_version()},
            server_version=self.engine_version(), fingerprint=fingerprint)

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """sha256 (when recorded), then every byte through gzip and tar, and no path escaping the volume."""
        if found_backups.is_found(artifact):  # made outside drill: its sha256 as found, read through
            found_backups.check_found(artifact)
            return
        path = check_backup_file(artifact)
        try:
            with gzip.open(path, "rb") as unzipped:
                with tarfile.open(fileobj=unzipped, mode="r|") as archive:
                    for member in archive:
                        escape = _escapes(member)
                        if escape:
                            raise BackupError(f"backup {path} holds {escape}; nothing was extracted")
                        if member.isfile():
                            handle = archive.extractfile(member)
                            assert handle is not None
                            while handle.read(CHUNK):
                                pass
                # tar stops at its end-of-archive blocks; gzip checks its CRC only at the very end.
                while unzipped.read(CHUNK):
                    pass
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"backup {path} is not a readable tar.gz: {exc}") from None

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        self.verify_backup(artifact)  # before anything is touched
        if into is None:
            self.require_destructive("overwrite")
            target, store = self.volume, self
        else:
            target = into
            if self._volume_exists(target):
                raise StoreError(f"cannot restore {artifact.id} into volume {target!r}: it already exists; name a "
                                 f"new volume")
            options = replace(VolumeOptions.of(self.config), stop_containers=())
            store = VolumeStore(name=into, config=replace(self.config, name=into, destructive=True, options=options),
                                client=self.client, volume=target, helper_image=self.helper_image,
                                labels=self.labels)
        with tempfile.TemporaryFile() as plain:
            # Unpacked before the target is touched: a backup that changed since it was verified fails here.
            try:
                with gzip.open(artifact.path, "rb") as source:
                    while block := source.read(CHUNK):
                        plain.write(block)
            except (OSError, EOFError, zlib.error) as exc:
                raise BackupError(f"backup {artifact.path} is not a readable tar.gz: {exc}") from None
            plain.seek(0)
            with self._services_stopped(progress) if into is None else contextlib.nullcontext():
                if self._volume_exists(target):
                    progress(f"emptying volume {target}")
                    self._sh(f"find {MOUNT} -mindepth 1 -delete", target)
                else:
                    progress(f"creating volume {target}")
                    self.client.volumes.create(name=target, labels=self.labels)
                    if into is not None:
                        store.closers.append(lambda: _remove_volume(self.client, target))
                progress(f"extracting {artifact.path.name} into volume {target}")
                self._put(plain, target)
        return store

    # -- disaster -------------------------------------------------------------------------------------------

    def lose(self) -> None:
        """Remove the volume. Docker refuses while a container refers to it: then empty it instead."""
        self.require_destructive("lose")
        users = self.containers_using()
        if users:
            self._sh(f"find {MOUNT} -mindepth 1 -delete")
            return
        _remove_volume(self.client, self.volume)

    def restore_target_exists(self, name: str) -> bool:
        return self._volume_exists(name)

    def drop_restore_target(self, name: str) -> None:
        """Remove a volume a restore into `name` made (a drill killed before its clean-up left it)."""
        if name == self.volume:
            raise StoreError(f"{name!r} is the store's own volume, not a restore target")
        _remove_volume(self.client, name)

    def markers(self) -> VolumeMarkerSink:
        return VolumeMarkerSink(self)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


class VolumeMarkerSink:
    """RPO markers as files .drill-markers/<seq>-<epoch> in the volume (left out of fingerprints and counts)."""

    def __init__(self, store: VolumeStore) -> None:
        self.store = store

    def prepare(self) -> None:
        self.store.require_writes("write RPO markers into")

    def write(self, marker: Marker) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(f"{MARKER_DIR}/{marker.seq:012d}-{marker.written_at!r}")
            info.mtime = int(marker.written_at)
            archive.addfile(info, io.BytesIO(b""))
        self.store._put(buffer.getvalue())

    def newest(self) -> Marker | None:
        if not self.store._volume_exists():
            return None
        best: Marker | None = None
        for path, _member, _data in self.store._stream(folder=MARKER_DIR):  # that folder only, not the whole volume
            if path.startswith(MARKER_DIR + "/"):
                seq, _, written = path.split("/", 1)[1].partition("-")
                with contextlib.suppress(ValueError):
                    marker = Marker(int(seq), float(written))
                    if best is None or marker.seq > best.seq:
                        best = marker
        return best

    def close(self) -> None:
        return None


def _remove_volume(client: Any, name: str) -> None:
    import docker.errors

    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StoreError(f"cannot remove volume {name!r}: {_short(exc)}") from None


def _spool(data: IO[bytes]) -> IO[bytes]:
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115
    while block := data.read(CHUNK):
        spooled.write(block)
    spooled.seek(0)
    return spooled


def _seed_content(i: int) -> bytes:
    if i % 5 == 4:
        return hashlib.sha256(str(i).encode()).digest() * (i % 64)
    return (f"seed file {i}: ünïcödé ✓ " * (i % 97)).encode()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1][:300] if lines else type(exc).__name__
