"""The environment of the programs drill runs on backups (pg_dump, pg_restore, psql, mongorestore ...).

They get what a program needs to run and find its libraries (PATH, HOME, the locale, TZ, TMPDIR,
LD_LIBRARY_PATH), their own configuration variables (libpq's `PG*` for the PostgreSQL tools), and the
values drill passes on purpose (PGPASSWORD). Nothing else of drill's environment: not the live URLs
that `url_env` names, not [notify]'s SMTP password or webhook URL, not a key or a cloud credential.
A program that a hostile backup made run (the reason this matters) finds no secret to leak.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

BASE_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")


def minimal_env(prefixes: tuple[str, ...] = (), *, drop: tuple[str, ...] = (),
                values: Mapping[str, str] | None = None) -> dict[str, str]:
    """BASE_VARIABLES, LC_*, variables starting with one of `prefixes` (minus `drop`), then `values`."""
    env = {key: value for key, value in os.environ.items()
           if (key in BASE_VARIABLES or key.startswith("LC_") or key.startswith(prefixes)) and key not in drop}
    env.update(values or {})
    return env
