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
import hashlib
import io
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from drill.config import StoreConfig
from drill.errors import StoreError
from drill.fingerprint import Fingerprint
from drill.markers import marker_file_name, newest_marker
from drill.stores.base import Marker, Progress, no_progress
from drill.stores.capabilities import PlantedChange
from drill.stores.volume import KIND, checks
from drill.stores.volume.engine import MOUNT, _remove_volume, _short
from drill.stores.volume.tar_stream import (
    CHUNK,
    MARKER_DIR,
    ROOT_PART,
    SCHEMA_LIMIT,
    _entry_kind,
    _escapes,
    _HashingWriter,
    _member_path,
    _Printer,
    _spool,
    _StreamReader,
)
from drill.stores.volume.transfers import VolumeTransfers

__all__ = ["CHUNK", "MARKER_DIR", "MOUNT", "ROOT_PART", "SCHEMA_LIMIT", "VolumeMarkerSink", "VolumeStore",
           "_HashingWriter", "_Printer", "_StreamReader", "_entry_kind", "_escapes", "_member_path",
           "_remove_volume", "_short", "_spool"]


@dataclass
class VolumeStore(VolumeTransfers):
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

    # -- containers that use the volume, backup and restore: transfers.py (VolumeTransfers) ------------------

    # -- disaster -------------------------------------------------------------------------------------------

    def lose(self) -> None:
        """Remove the volume. Docker refuses while a container refers to it: then empty it instead."""
        self.require_destructive("lose")
        users = self.containers_using()
        if users:
            self._sh(f"find {MOUNT} -mindepth 1 -delete")
            return
        _remove_volume(self.client, self.volume)

    def own_restore_target(self, name: str) -> str | None:
        return "volume" if name == self.volume else None

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
            info = tarfile.TarInfo(f"{MARKER_DIR}/{marker_file_name(marker)}")
            info.mtime = int(marker.written_at)
            archive.addfile(info, io.BytesIO(b""))
        self.store._put(buffer.getvalue())

    def newest(self) -> Marker | None:
        if not self.store._volume_exists():
            return None
        prefix = MARKER_DIR + "/"
        return newest_marker(path[len(prefix):] for path, _member, _data in self.store._stream(folder=MARKER_DIR)
                             if path.startswith(prefix))  # that folder only, not the whole volume

    def close(self) -> None:
        return None


def _seed_content(i: int) -> bytes:
    if i % 5 == 4:
        return hashlib.sha256(str(i).encode()).digest() * (i % 64)
    return (f"seed file {i}: ünïcödé ✓ " * (i % 97)).encode()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
