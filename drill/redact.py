"""Secrets never leave the process: passwords in URLs and every registered secret are masked.

Stores register the secrets they learn (a live URL's password, a key) with `register_secret`;
`redact` then masks them in any string, list or mapping, and `RedactingFilter` does the same for
every log record, so a secret cannot reach logs, results or reports by a path nobody thought of.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<tail>@)")
_KEY_VALUE = re.compile(r"(?i)\b(?P<key>password|passwd|pwd|secret|token)=(?P<value>[^\s&;]+)")


def register_secret(secret: str | None) -> None:
    """Remember a secret so that every later redact() masks it (too-short values are ignored)."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact_text(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('tail')}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}={MASK}", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact(value: Any) -> Any:
    """Mask secrets in a string, or recursively in lists, tuples and dict values and keys."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def url_without_password(url: str) -> tuple[str, str | None]:
    """Split a URL into (the URL with its password removed, the password)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), parts.password


_factory_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every log record at creation, whatever handler later writes it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return record
        record.msg, record.args = redact_text(message), None
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
