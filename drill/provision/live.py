"""Reading a live store's connection URL: from the environment variable `url_env` names, never from
drill.toml, with its password registered as a secret before anything can print it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from drill.config import StoreConfig
from drill.errors import ConfigError
from drill.redact import register_secret, url_for_display


@dataclass(frozen=True)
class LiveURL:
    url: str  # with its password: for clients only, never for messages
    parts: SplitResult
    password: str | None  # unquoted
    description: str  # the URL without its password nor a secret in its query: for messages, results and reports

    @property
    def username(self) -> str | None:
        return unquote(self.parts.username) if self.parts.username else None

    @property
    def database(self) -> str:
        return unquote(self.parts.path.lstrip("/"))


def live_url(config: StoreConfig, schemes: tuple[str, ...], example: str, *, check_scheme: bool = True) -> LiveURL:
    """The URL of a live store, checked against the schemes its kind accepts."""
    assert config.url_env is not None  # validated with the configuration
    url = os.environ.get(config.url_env)
    key = f"stores.{config.name}.url_env"
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set; it must hold the connection URL of "
                          f"live store {config.name!r} ({example})", key=key)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ in the host: the message never quotes the URL (a password)
        raise ConfigError(f"{config.url_env} is not a valid URL ({exc}); it must look like {example}",
                          key=key) from None
    password = unquote(parts.password) if parts.password is not None else None
    register_secret(password)
    register_secret(parts.password)  # as written in the URL, percent-encoded
    if check_scheme and parts.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{config.url_env} must be a {allowed} URL (got scheme {parts.scheme!r})", key=key)
    try:
        port = parts.port  # urllib checks the port only when it is read
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        written = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise ConfigError(f"{config.url_env} has a bad port {written!r}: a port is a number from 1 to 65535 "
                          f"({example})", key=key)
    return LiveURL(url, parts, password, url_for_display(url))
