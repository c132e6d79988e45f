"""The text table every benchmark prints after its JSON: a header row, a rule, then one row per figure."""

from __future__ import annotations

from collections.abc import Sequence


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns as wide as their widest cell; a rule of dashes under the first (header) row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
