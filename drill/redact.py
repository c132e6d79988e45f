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
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<tail>@)")
# name=value where the name ends in a secret's word, with no word boundary before it: `sslpassword=`,
# `tlsCertificateKeyFilePassword=`, `apiKey=`, `AWS_SESSION_TOKEN=` (the name's head is kept: it says what was masked)
_SECRET_WORDS = "password|passwd|pwd|secret|token|key"
_KEY_VALUE = re.compile(rf"(?i)(?P<key>{_SECRET_WORDS})=(?P<value>[^\s&;]+)")
# MongoDB's authMechanismProperties=NAME:VALUE,NAME:VALUE (AWS_SESSION_TOKEN:<token>): every VALUE masked, as
# written or percent-encoded (`%3A`, `%2C`)
_PROPERTIES = re.compile(r"(?i)(?P<key>authMechanismProperties=)(?P<value>[^\s&;]+)")
_PROPERTY_VALUE = re.compile(r"(?i)(?P<sep>:|%3A)(?P<value>(?:(?!,|%2C).)+)")
# A query parameter whose name holds one of these words carries a secret (case-insensitive, anywhere in the name).
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORDS}")
_MECHANISM_PROPERTIES = "authmechanismproperties"


def register_secret(secret: str | None) -> None:
    """Remember a secret so that every later redact() masks it (too-short values are ignored)."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact_text(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('tail')}", text)
    text = _PROPERTIES.sub(lambda m: m.group("key") + _mask_properties(m.group("value")), text)
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


def _mask_properties(value: str) -> str:
    """`SERVICE_NAME:x,AWS_SESSION_TOKEN:t` -> `SERVICE_NAME:***,AWS_SESSION_TOKEN:***` (names kept)."""
    return _PROPERTY_VALUE.sub(lambda m: f"{m.group('sep')}{MASK}", value)


def masked_query(query: str) -> str:
    """A URL's query with the value of every parameter that carries a secret masked, and each such value registered
    as a secret (so a driver's message quoting it is masked too): a name holding password, passwd, pwd, secret, token
    or key (`sslpassword`, `tlsCertificateKeyFilePassword`, `apiKey`), and every value of MongoDB's
    `authMechanismProperties` (`AWS_SESSION_TOKEN:<token>`). Other parameters are kept as written."""
    pairs = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        plain_name = unquote_plus(name)
        if equals and plain_name.lower() == _MECHANISM_PROPERTIES:
            for item in unquote_plus(value).split(","):
                register_secret(item.partition(":")[2])
            pairs.append(f"{name}={_mask_properties(value)}")
        elif equals and _SECRET_NAME.search(plain_name):
            register_secret(value)
            register_secret(unquote_plus(value))
            pairs.append(f"{name}={MASK}")
        else:
            pairs.append(pair)
    return "&".join(pairs)


def url_for_display(url: str) -> str:
    """A URL as messages, results and reports may show it: no password, no secret in its query (masked_query)."""
    shown, _password = url_without_password(url)
    parts = urlsplit(shown)
    if not parts.query:
        return shown
    return urlunsplit((parts.scheme, parts.netloc, parts.path, masked_query(parts.query), parts.fragment))


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
