"""Name patterns for path-like names (object names, file paths, document paths), as gsutil reads them.

`*` matches within one path segment, `**` across segments, `?` one character other than `/`, and
`[...]` a character class. Redis keys are not paths: Redis matches its own patterns (SCAN MATCH).
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=64)
def compile_path_glob(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")  # ranges (a-z) kept, backslashes literal
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def matches(pattern: str, name: str) -> bool:
    return compile_path_glob(pattern).fullmatch(name) is not None


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard (to list under it only)."""
    return re.split(r"[*?\[]", pattern, maxsplit=1)[0]
