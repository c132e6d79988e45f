"""A PostgreSQL database: its name (an identifier, never a connection string), and its own settings, read
from the catalog before it is dropped and used to re-create it.

An in-place restore drops the database and creates it again (pg_dump without --create does not carry
the database itself). `CREATE DATABASE name` alone would give it the connecting role as owner and the
server's default encoding and locale: a live `ledger` owned by `ledger_owner` in LATIN1 would come
back owned by someone else in UTF8. So drill reads owner, encoding, collation, ctype, locale provider
(and ICU or builtin locale) and connection limit while the database exists (when the store is
provisioned, again right before a drop) and re-creates it from template0 with exactly those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from psycopg import sql

from drill.errors import ConfigError
from drill.names import check_name

POSTGRES_MAX_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently cuts longer names

_INFO = """
SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, d.datconnlimit,
       to_jsonb(d.*)
FROM pg_database d WHERE d.datname = %s
"""
_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


@dataclass(frozen=True)
class DatabaseInfo:
    owner: str
    encoding: str
    collate: str
    ctype: str
    connection_limit: int = -1
    locale_provider: str | None = None  # libc | icu | builtin (PostgreSQL 15+), None before
    provider_locale: str | None = None  # the ICU (15+) or builtin (17+) locale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatabaseInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def read_info(conn: Any, name: str) -> DatabaseInfo | None:
    """The database's settings, or None when it does not exist."""
    row = conn.execute(_INFO, (name,)).fetchone()
    if row is None:
        return None
    owner, encoding, collate, ctype, limit, raw = row
    provider = _PROVIDERS.get(str(raw.get("datlocprovider"))) if "datlocprovider" in raw else None
    locale = raw.get("datlocale") or raw.get("daticulocale")  # renamed in PostgreSQL 17
    return DatabaseInfo(str(owner), str(encoding), str(collate), str(ctype), int(limit), provider,
                        str(locale) if locale and provider in ("icu", "builtin") else None)


def create_statement(name: str, info: DatabaseInfo | None, *, tablespace: str | None = None,
                     owner: bool = True) -> sql.Composed:
    """CREATE DATABASE with the settings of `info` (from template0, which takes any encoding and locale); a
    plain CREATE DATABASE without it. `owner=False` leaves the owner to be the connecting role."""
    parts: list[sql.Composable] = [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))]
    if info is not None:
        if owner:
            parts.append(sql.SQL("OWNER {}").format(sql.Identifier(info.owner)))
        parts.append(sql.SQL("TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Literal(info.encoding), sql.Literal(info.collate), sql.Literal(info.ctype)))
        if info.locale_provider is not None:
            parts.append(sql.SQL("LOCALE_PROVIDER {}").format(sql.SQL(info.locale_provider)))
            if info.provider_locale is not None:
                keyword = "ICU_LOCALE" if info.locale_provider == "icu" else "BUILTIN_LOCALE"
                parts.append(sql.SQL(keyword + " {}").format(sql.Literal(info.provider_locale)))
        if info.connection_limit != -1:
            parts.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(info.connection_limit)))
    if tablespace:
        parts.append(sql.SQL("TABLESPACE {}").format(sql.Identifier(tablespace)))
    return sql.SQL(" ").join(parts)


def check_postgres_database(name: str, what: str) -> None:
    """drill.names.check_name, plus PostgreSQL's length limit (a longer name would be cut and then not found)."""
    check_name(name, what)
    if len(name.encode()) > POSTGRES_MAX_BYTES:
        raise ConfigError(f"{what} {name!r} is refused: PostgreSQL names are at most {POSTGRES_MAX_BYTES} bytes "
                          f"(a longer one is silently cut)")
