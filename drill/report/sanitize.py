"""Text from stores and tools (table names, error output) made safe for every report format.

Control characters (\x01, an ANSI colour escape, a lone surrogate) make junit.xml invalid XML and
garble terminals and HTML; they are stripped from every string of the results before any renderer
sees them (newlines and tabs stay). What each format must escape beyond that (HTML and Markdown
markup) is escaped by its renderer; `markdown_text` is the Markdown one.
"""

from __future__ import annotations

import html
import re
from typing import Any

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# C0 controls but tab and newline, DEL and C1, lone surrogates, and the two XML non-characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()#!|~{}])")


def clean_text(text: str) -> str:
    return _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))


def clean(value: Any) -> Any:
    """`value` with every string in it (keys too) cleaned; other values unchanged."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def markdown_text(text: str) -> str:
    """Text shown as itself in Markdown: HTML escaped (no raw tags pass through), Markdown markup backslashed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def code_fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in `text`, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_span(text: str) -> str:
    """Inline code showing `text` literally: nothing inside a code span is markup, and the fence is longer
    than any run of backticks in the text."""
    one_line = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"
