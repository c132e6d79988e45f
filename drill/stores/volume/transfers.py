"""Backups and restores of a Docker volume: the services that use it stopped around them, the volume's tar stream
rewritten into a runbook-compatible tar.gz, and every backup read completely before the target is touched.

VolumeTransfers is a part of VolumeStore (store.py), kept here so that each file holds one concern.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from drill import found_backups
from drill.errors import BackupError, StoreError
from drill.stores.base import (
    BackupArtifact,
    Guarded,
    Progress,
    Store,
    check_backup_file,
    no_progress,
    require_new_restore_target,
)
from drill.stores.volume import VolumeOptions
from drill.stores.volume.engine import MOUNT, _remove_volume, _short
from drill.stores.volume.tar_stream import CHUNK, _escapes, _HashingWriter, _Printer, _spool


class VolumeTransfers(Guarded):
    """The containers using the volume, backup, verification and restores of VolumeStore, whose fields these use."""

    client: Any  # docker.DockerClient
    volume: str
    helper_image: str
    labels: dict[str, str]

    if TYPE_CHECKING:  # VolumeStore's own
        def engine_version(self) -> str: ...

        def _stream(self, volume: str | None = None,
                    folder: str = ".") -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes] | None]]: ...

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
        from drill.stores.volume.store import VolumeStore  # store.py imports this module

        assert isinstance(self, VolumeStore)  # the only class made of these parts
        if into is not None:
            require_new_restore_target(self, into)  # `into` its own volume is an in-place restore without its guards
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
