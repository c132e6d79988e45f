"""Names are identifiers, never connection strings or paths (DESIGN, safety invariant 3).

A restore target (`into "userdb_restored"`, `drill restore --into`), a configured `database` and a
live URL's database name reach libpq and the client tools. libpq reads a database name that holds
`=` as a whole connection string (`host=evil port=5432 dbname=x` sends the live password to another
host) and one that starts with `postgresql://` as a URL; a name that starts with `-` reads as an
option, and `/` or `..` as a path. Such names are refused here, before anything connects; the tools
also get the name only inside a `dbname=` connection string built by libpq's own quoting.
"""

from __future__ import annotations

import re
from typing import Any

from drill.errors import ConfigError

# libpq reads a dbname starting with postgresql:// or postgres:// as a URL; any scheme-like prefix is refused.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a store, database, bucket or project name; None when it can."""
    if not name or not name.strip():
        return "it is empty"
    if name != name.strip():
        return "it starts or ends with a space"
    if "=" in name:
        return "it contains '=' (libpq would read it as a connection string)"
    if _SCHEME.match(name):
        return "it starts like a URL (scheme:), which libpq would read as a connection URL"
    if name.startswith("-"):
        return "it starts with '-' (a tool would read it as an option)"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "it contains a path separator"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    return None


def check_name(name: str, what: str) -> None:
    """A ConfigError naming `what` (e.g. "restore target") when `name` is not a plain identifier."""
    problem = name_problem(name)
    if problem is not None:
        raise ConfigError(f"{what} {name!r} is refused: {problem}; use a plain name such as \"userdb_restored\" "
                          f"(letters, digits, '_', '-', '.')")



def database_name(value: Any) -> str:
    """A drill.toml reader (drill.stores.kinds.option) for a `database` key: a plain, non-empty name."""
    if not (isinstance(value, str) and value):
        raise ValueError("must be a non-empty string")
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} is refused: {problem}; write a plain database name")
    return value
