"""Where a table or key sits in drill.toml, so that every complaint names its file and line.

tomllib gives values without positions; these read the text again, best effort.
"""

from __future__ import annotations

import re


def locate(lines: list[str], table: str, key: str | None) -> int | None:
    """Line of `key` inside `[table]` (or of the table header); best effort, 1-based."""
    parts = [p.strip('"') for p in re.findall(r'"[^"]*"|[^.]+', table)]  # controls."SOC2-CC7.5": 2 parts
    header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(
        rf'(?:{re.escape(p)}|"{re.escape(p)}")' for p in parts) + r"\s*\]+\s*(#.*)?$")
    in_table = False
    header_line: int | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = bool(header.match(stripped))
            if in_table and header_line is None:
                header_line = number
            continue
        if in_table and key is not None and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line):
            return number
    if header_line is None:
        # A sub-table such as [storez.db] of a table that has no header of its own.
        prefix = re.compile(r"^\s*\[+\s*" + re.escape(table) + r"\s*[.\]]")
        header_line = next((n for n, line in enumerate(lines, start=1) if prefix.match(line)), None)
    if header_line is None and key is not None:
        # Dotted keys or inline tables: fall back to the first mention of the key.
        for number, line in enumerate(lines, start=1):
            if re.match(rf'^\s*(?:[\w."-]+\.)?"?{re.escape(key)}"?\s*=', line):
                return number
    return header_line


def line_from_toml_error(message: str) -> int | None:
    """The line tomllib's message names (it has no attribute for it)."""
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
