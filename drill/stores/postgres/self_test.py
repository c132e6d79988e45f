"""The self-test's planted change in a PostgreSQL copy: one value of one row, changed and put back.

drill knows nothing of a restored database's schema, so it tries the tables in fingerprint order
and, in each, the columns whose type it can change without changing the row count: text (its
first character swapped), numbers (plus one) and booleans (negated). Each attempt runs in a
savepoint, so one a constraint or a trigger refuses leaves nothing behind; the first that
succeeds is committed. Undoing it writes the old value back, cast from its text form, which
PostgreSQL reads back exactly for these types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from drill.errors import StoreError
from drill.stores.capabilities import PlantedChange

if TYPE_CHECKING:
    from drill.stores.postgres.store import PostgresStore

# pg_type.typcategory -> how a value of it is changed (the column as {c})
_CHANGES = {
    "S": "CASE WHEN left({c}, 1) = '~' THEN '^' ELSE '~' END || substr({c}, 2)",  # strings: same length
    "N": "{c} + 1",  # numbers
    "B": "NOT {c}",  # booleans
}
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND t.typcategory IN ('S', 'N', 'B')
ORDER BY a.attnum
"""
MAX_ATTEMPTS = 50  # columns tried before giving up (each attempt is one savepoint)


def plant_change(store: PostgresStore, tables: list[tuple[str, str]]) -> PlantedChange:
    """Change one value of one row of the first of `tables` (schema, name) that allows it."""
    attempts = 0
    with store.server.connect(store.database, autocommit=False) as conn:
        for schema, table in tables:
            ident = sql.Identifier(schema, table)
            for column, type_text, category in conn.execute(_COLUMNS, (ident.as_string(conn),)).fetchall():
                attempts += 1
                if attempts > MAX_ATTEMPTS:
                    break
                planted = _try(conn, ident, str(column), str(type_text), _CHANGES[str(category)])
                if planted is not None:
                    conn.commit()
                    return PlantedChange(part=f"{schema}.{table}",
                                         item=f"column {column} of one row of table {schema}.{table}",
                                         undo=_undo(store, ident, str(column), str(type_text), *planted))
        conn.rollback()
    raise StoreError(f"the self-test found no value it could change in {store.name!r} (tried {attempts} column(s) "
                     f"of text, number or boolean type)")


def _try(conn: psycopg.Connection[tuple[Any, ...]], ident: sql.Identifier, column: str, type_text: str,
         change: str) -> tuple[str, str] | None:
    """(the changed row's new ctid, the old value as text), or None when the table or a constraint refuses."""
    col = sql.Identifier(column)
    try:
        with conn.transaction():  # a savepoint
            found = conn.execute(sql.SQL("SELECT ctid::text, {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT 1")
                                 .format(c=col, t=ident)).fetchone()
            if found is None:
                return None
            row = conn.execute(sql.SQL("UPDATE {t} SET {c} = " + change + " WHERE ctid = %s::tid RETURNING ctid::text")
                               .format(t=ident, c=col), (found[0],)).fetchone()
            if row is None:
                return None
            return str(row[0]), str(found[1])
    except psycopg.Error:
        return None


def _undo(store: PostgresStore, ident: sql.Identifier, column: str, type_text: str, ctid: str,
          old: str) -> Callable[[], None]:
    def put_back() -> None:
        with store.server.connect(store.database) as conn:
            try:
                conn.execute(sql.SQL("UPDATE {t} SET {c} = CAST(%s AS {ty}) WHERE ctid = %s::tid")
                             .format(t=ident, c=sql.Identifier(column), ty=sql.SQL(type_text)), (old, ctid))
            except psycopg.Error as exc:
                raise StoreError(f"the self-test could not put back column {column} of {ident.as_string(conn)}: "
                                 f"{exc}") from None

    return put_back
