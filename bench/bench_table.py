"""The text table every benchmark prints after its JSON: a header row, a rule, then one row per figure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HEADER = ("measure", "drill", "baseline", "ratio", "goal")


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns as wide as their widest cell; a rule of dashes under the first (header) row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))


def save_and_print(report: dict[str, Any], out: Path, print_table: Callable[[dict[str, Any]], None]) -> None:
    """Write the report as JSON to `out`, then print its table and where the JSON is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON: {out}")
