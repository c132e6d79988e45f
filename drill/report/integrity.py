"""Tamper evidence for one results.json: a sha256 of its own content, stored inside it.

The digest covers the canonical JSON of every key except `content_sha256` itself (keys sorted,
no whitespace, UTF-8), so re-indenting a file does not break it but changing any value does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

DIGEST_KEY = "content_sha256"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def content_digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in data.items() if k != DIGEST_KEY})).hexdigest()


def seal(data: dict[str, Any]) -> dict[str, Any]:
    """The same results with their digest added (computed on the JSON form, as a reader will see it)."""
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    plain.pop(DIGEST_KEY, None)
    plain[DIGEST_KEY] = content_digest(plain)
    return plain


def seal_problem(data: dict[str, Any]) -> str | None:
    """None when the results match their recorded digest; otherwise what is wrong."""
    recorded = data.get(DIGEST_KEY)
    if not isinstance(recorded, str):
        return "it carries no content_sha256 (written by an older drill, or the digest was removed)"
    actual = content_digest(data)
    if actual != recorded:
        return f"its content does not match its content_sha256 (recorded {recorded[:12]}…, content {actual[:12]}…)"
    return None
