"""Health checks after a restore, like the runbook's: an HTTP endpoint answers, a query returns what it should.

`HealthService` is a small local HTTP service standing in for the application tier of a drill
that has none of its own: `GET /health` answers 200 when every store of the scenario answers a
count, else 503 naming the stores that did not. Real drills point the endpoint sentence at their
own services' URLs instead.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drill.errors import StoreError, VerificationError
from drill.redact import redact_text, register_secret
from drill.stores import capabilities
from drill.stores.base import Store
from drill.stores.capabilities import RunsSql

# Errors that mean "not up yet" while a service starts; anything else fails at once.
TRANSIENT = (ConnectionRefusedError, ConnectionResetError, TimeoutError)


def check_http(url: str, expected: int, timeout: float = 30.0) -> dict[str, Any]:
    """GET url until it answers (connection refused is retried until `timeout`); its status must be `expected`."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    password = urllib.parse.urlsplit(url).password
    if password:
        register_secret(password)  # a URL with credentials in it: never shown
    shown = redact_text(url)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=min(10.0, timeout)) as response:
                status, body = int(response.status), response.read(2000)
            break
        except urllib.error.HTTPError as exc:
            status, body = int(exc.code), exc.read(2000)
            break
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, TRANSIENT) or time.monotonic() > deadline:
                raise VerificationError(f"the HTTP endpoint {shown} did not answer: {exc.reason}") from None
        except TRANSIENT as exc:
            if time.monotonic() > deadline:
                raise VerificationError(f"the HTTP endpoint {shown} did not answer: {exc}") from None
        time.sleep(0.1)
    evidence = {"url": shown, "status": status, "expected": expected, "seconds": time.monotonic() - started}
    if status != expected:
        text = redact_text(body.decode("utf-8", "replace").strip())
        raise VerificationError(f"the HTTP endpoint {shown} answered {status}, expected {expected}"
                                + (f": {text[:300]}" if text else ""))
    return evidence


def check_query(store: Store, query: str, expected: str) -> dict[str, Any]:
    """Run a query on a store that runs SQL; the first column of its first row must read `expected`.

    A check reads: the store runs it as one statement, inside a READ ONLY transaction on a live store that
    does not allow writes, and always rolls it back (capabilities.RunsSql.query_value). Booleans read as psql
    prints them (`t`/`f`) or as `true`/`false`.
    """
    if not isinstance(store, RunsSql):
        raise StoreError(capabilities.lacks(store.name, store.kind, RunsSql, "a query check"))
    try:
        value = store.query_value(query)
    except StoreError as exc:
        raise VerificationError(str(exc)) from None
    actual = "" if value is None else str(value)
    evidence = {"store": store.name, "query": query, "expected": expected, "actual": actual,
                "read_only": store.config.read_only}
    if not _same(value, actual, expected):
        raise VerificationError(f"the query {query!r} on {store.name!r} returned {actual!r}, expected {expected!r}")
    return evidence


def check_query_at_least(store: Store, query: str, minimum: int) -> dict[str, Any]:
    """Run a query on a store that runs SQL; the first column of its first row must be a number >= `minimum`
    (read as check_query reads: one statement, read-only on a live store without writes, rolled back)."""
    if not isinstance(store, RunsSql):
        raise StoreError(capabilities.lacks(store.name, store.kind, RunsSql, "a query check"))
    try:
        value = store.query_value(query)
    except StoreError as exc:
        raise VerificationError(str(exc)) from None
    evidence = {"store": store.name, "query": query, "at_least": minimum,
                "actual": None if value is None else str(value), "read_only": store.config.read_only}
    try:
        number = float(str(value)) if value is not None and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None:
        raise VerificationError(f"the query {query!r} on {store.name!r} returned {value!r}, not a number: it must "
                                f"return at least {minimum}")
    if number < minimum:
        raise VerificationError(f"the query {query!r} on {store.name!r} returned {value}, expected at least {minimum}")
    return evidence


def _same(value: Any, actual: str, expected: str) -> bool:
    if isinstance(value, bool):  # psql prints t/f, Python True/False: both spellings read the same
        return expected.strip().lower() in (("t", "true") if value else ("f", "false"))
    return actual == expected


class HealthService:
    """GET /health: 200 when every probe passes, 503 (naming the failures) when one does not."""

    def __init__(self, probes: Callable[[], dict[str, str | None]]) -> None:
        self.probes = probes
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/health":
                    self.send_error(404)
                    return
                failures = {name: err for name, err in service.probes().items() if err is not None}
                body = json.dumps({"status": "ok" if not failures else "unhealthy", "failures": failures}).encode()
                self.send_response(200 if not failures else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="drill-health", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
        self.server.server_close()
