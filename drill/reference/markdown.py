"""Small Markdown writers for the generated pages: tables whose cells survive any text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

GENERATED = ("<!-- Generated at build time by drill.reference from the code ({source}); do not edit: "
             "change the code. -->")


def prose(text: str) -> str:
    """Text from the code (help, docstrings) as Markdown: `<run-id>` stays visible, not an HTML tag; code spans
    are left as they are."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts)


def cell(text: str) -> str:
    """One table cell: on one line, with the pipes outside code spans escaped (code spans keep theirs)."""
    parts = re.split(r"(`[^`]*`)", prose(" ".join(text.split())))
    return "".join(p if p.startswith("`") else p.replace("|", r"\|") for p in parts)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def code(text: str) -> str:
    """Inline code that holds backticks too."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"
