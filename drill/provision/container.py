"""Throwaway containers through testcontainers, with drill's own clean-up that does not rely on Ryuk.

testcontainers starts the container; drill adds what a drill needs around it:

- the engine is checked first, and an unreachable one is a clear ProvisionError (no traceback);
- every container carries the labels `drill.owner=<pid>`, `drill.host=<hostname>` and
  `drill.container=<uuid>`; its removal (by that label, forced, with its anonymous volumes) is
  pushed on drill's CleanupStack *before* it is created, so success, failure, Ctrl-C and a
  failed start all remove it, also when testcontainers' reaper (Ryuk) is disabled or cannot run;
- containers and volumes left by a drill killed with SIGKILL (its pid is gone) are swept by the
  next provisioning on the same host;
- readiness is a probe polled until a deadline, with an explicit tuple of transient errors; a
  container that exits, or a probe that never succeeds, fails with the container's logs attached.

Networking: containers run in the host's network (`network="host"`) and the server is told to
listen on 127.0.0.1 on a free port, so drill reaches it the same way on every engine that runs
on this machine, including one without a bridge network (see docs/stores/containers.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drill.cleanup import CleanupStack
from drill.errors import ProvisionError
from drill.provision.processes import pid_alive
from drill.redact import redact_text

log = logging.getLogger(__name__)
OWNER_LABEL = "drill.owner"
HOST_LABEL = "drill.host"
ID_LABEL = "drill.container"
READY_TIMEOUT = 120.0
LOG_TAIL = 60


def docker_client() -> Any:
    """A docker SDK client for $DOCKER_HOST (or the default socket), proven to answer."""
    try:
        import docker
    except ModuleNotFoundError:
        raise ProvisionError("containers need the Python packages docker and testcontainers: "
                             "pip install 'dr-drill[docker]'") from None
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        raise ProvisionError(
            f"no Docker engine is reachable at {where} ({_short(exc)}); this scenario needs one: start Docker "
            f"(in this repository: `.ci/docker-engine start` as root, then export the DOCKER_HOST it prints) "
            f"or set DOCKER_HOST to a running engine") from None
    return client


def _short(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def owner_labels() -> dict[str, str]:
    return {OWNER_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


def sweep_stale(client: Any) -> list[str]:
    """Remove containers and volumes of this host whose drill process is gone; returns what was removed."""
    removed: list[str] = []
    host = socket.gethostname()
    with contextlib.suppress(Exception):
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if _stale(container.labels, host):
                with contextlib.suppress(Exception):
                    container.remove(force=True, v=True)
                    removed.append(f"container {container.name}")
        for volume in client.volumes.list(filters={"label": OWNER_LABEL}):
            labels = volume.attrs.get("Labels") or {}
            if _stale(labels, host):
                with contextlib.suppress(Exception):
                    volume.remove(force=True)
                    removed.append(f"volume {volume.name}")
    for item in removed:
        log.info("removed a %s left by a drill that is gone", item)
    return removed


def _stale(labels: dict[str, str], host: str) -> bool:
    if labels.get(HOST_LABEL) != host:
        return False
    try:
        owner = int(labels.get(OWNER_LABEL, ""))
    except ValueError:
        return False
    return owner != os.getpid() and not pid_alive(owner)


def remove_labelled(client: Any, label: str, value: str) -> None:
    """Force-remove every container labelled `label=value` (with its anonymous volumes)."""
    for container in client.containers.list(all=True, filters={"label": f"{label}={value}"}):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
    left = client.containers.list(all=True, filters={"label": f"{label}={value}"})
    if left:
        raise ProvisionError(f"could not remove container(s) {', '.join(c.name for c in left)}; remove them with "
                             f"`docker rm -f`")


def _reaper_or_none() -> None:
    """Start testcontainers' reaper (Ryuk) when it is enabled; when it cannot run (its image cannot be
    pulled, no privileges), go on without it: drill's own clean-up removes every container it made."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import Reaper

    if testcontainers_config.ryuk_disabled:
        return
    try:
        Reaper.get_instance()
    except Exception as exc:
        log.warning("testcontainers' reaper (Ryuk, %s) cannot run here (%s); going on without it: drill removes "
                    "its containers itself (set TESTCONTAINERS_RYUK_DISABLED=true to skip this attempt)",
                    testcontainers_config.ryuk_image, _short(exc))
        testcontainers_config.ryuk_disabled = True


@dataclass
class ContainerSpec:
    """What to run: drill passes the same settings to the official images and to look-alikes."""

    image: str
    what: str  # e.g. "PostgreSQL container for 'userdb'"
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)  # name or host path -> {bind, mode}
    ready_timeout: float = READY_TIMEOUT


class Container:
    """One throwaway container: start() with a readiness probe, logs(), remove() (idempotent)."""

    def __init__(self, spec: ContainerSpec, cleanup: CleanupStack, client: Any | None = None) -> None:
        self.spec = spec
        self.client = client if client is not None else docker_client()
        self.key = uuid.uuid4().hex
        self.name = f"drill-{self.key[:12]}"
        self._wrapped: Any = None
        cleanup.push(f"remove the {spec.what} ({self.name})", self.remove)

    @property
    def id(self) -> str:
        return str(self._container().id)

    def _container(self) -> Any:
        if self._wrapped is None:
            raise ProvisionError(f"the {self.spec.what} was not started")
        return self._wrapped.get_wrapped_container()

    def start(self, probe: Callable[[], object], transient: tuple[type[BaseException], ...]) -> None:
        """Create and start the container, then poll `probe` until it returns without one of `transient`."""
        from testcontainers.core.container import DockerContainer

        sweep_stale(self.client)
        self._require_image()
        labels = {**owner_labels(), ID_LABEL: self.key}
        wrapped = DockerContainer(self.spec.image, command=self.spec.command or None,  # type: ignore[arg-type]
                                  env=dict(self.spec.env), name=self.name, network_mode="host", labels=labels,
                                  volumes=None)
        for source, mount in self.spec.volumes.items():
            wrapped.with_volume_mapping(source, mount["bind"], mount.get("mode", "rw"))
        self._wrapped = wrapped
        _reaper_or_none()
        try:
            wrapped.start()
        except Exception as exc:
            raise ProvisionError(f"the {self.spec.what} (image {self.spec.image}) did not start: {_short(exc)}"
                                 f"{self._logs_note()}") from None
        self.wait_ready(probe, transient)

    def _require_image(self) -> None:
        import docker.errors

        try:
            self.client.images.get(self.spec.image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self.client.images.pull(self.spec.image)
        except Exception as exc:
            raise ProvisionError(
                f"image {self.spec.image!r} for the {self.spec.what} is not on the engine and could not be pulled "
                f"({_short(exc)}); pull or build it first, or name another image with `image = ...` in drill.toml"
            ) from None

    def wait_ready(self, probe: Callable[[], object], transient: tuple[type[BaseException], ...]) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout
        last: BaseException | None = None
        while True:
            container = self._container()
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise ProvisionError(f"the {self.spec.what} (image {self.spec.image}) exited with code {code} "
                                     f"before it was ready{self._logs_note()}")
            try:
                probe()
                return
            except transient as exc:
                last = exc
            if time.monotonic() > deadline:
                raise ProvisionError(f"the {self.spec.what} (image {self.spec.image}) was not ready within "
                                     f"{self.spec.ready_timeout:.0f}s: {_short(last) if last else 'no answer'}"
                                     f"{self._logs_note()}")
            time.sleep(0.1)

    def logs(self, tail: int = LOG_TAIL) -> str:
        try:
            raw: bytes = self._container().logs(tail=tail)
        except Exception as exc:
            return f"(no logs: {_short(exc)})"
        return redact_text(raw.decode(errors="replace")).rstrip()

    def _logs_note(self) -> str:
        if self._wrapped is None or self._wrapped._container is None:
            return ""
        return f"\ncontainer logs (last {LOG_TAIL} lines):\n{self.logs()}"

    def stop(self, timeout: int = 30) -> None:
        self._container().stop(timeout=timeout)

    def restart(self) -> None:
        container = self._container()
        container.start()

    def remove(self) -> None:
        """Force-remove by label: holds whether or not testcontainers' reaper runs; safe to call again."""
        remove_labelled(self.client, ID_LABEL, self.key)
        self._wrapped = None


def free_host_port() -> int:
    """A free loopback port for a server in a host-network container."""
    from drill.provision.processes import free_port

    return free_port()


def store_image(configured: str | None, default: str) -> str:
    return configured or default
