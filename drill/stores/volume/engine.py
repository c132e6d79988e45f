"""The Docker engine as a volume store uses it: where the helper container mounts the volume, removing a volume,
and an engine error in one line."""

from __future__ import annotations

from typing import Any

from drill.errors import StoreError

MOUNT = "/volume"


def _remove_volume(client: Any, name: str) -> None:
    import docker.errors

    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StoreError(f"cannot remove volume {name!r}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1][:300] if lines else type(exc).__name__
