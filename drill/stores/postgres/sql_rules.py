"""What a plain SQL statement may do on a restore target, judged from its words (drill.stores.postgres.sql_lexer).

Refused: statements that reach beyond the target database (CREATE/ALTER/DROP DATABASE, ROLE, USER, GROUP,
TABLESPACE; ALTER SYSTEM; LOAD; GRANT, REVOKE or COMMENT on a database or tablespace) and every COPY that
is not `COPY table FROM stdin`. Left out on request: what `pg_restore --no-owner --no-privileges` leaves out.
"""

from __future__ import annotations

from drill.stores.postgres.sql_lexer import WORDY, Statement

_CLUSTER_OBJECTS = {"database", "role", "user", "group", "tablespace"}


def refusal(statement: Statement) -> str | None:
    """Why the statement is not data for the target, or None when it is."""
    words = statement.words(4)
    first, second = words[0], words[1] if len(words) > 1 else ""
    if first not in WORDY:
        return None  # nothing to refuse: INSERT, SELECT, UPDATE ... act on the target's own objects
    if first in ("create", "alter", "drop"):
        objects = [w for w in words[1:4] if w]
        # CREATE [UNIQUE ...] is never one of these; `CREATE OR REPLACE` neither.
        if objects and objects[0] in _CLUSTER_OBJECTS and objects[:2] != ["user", "mapping"]:
            return ("a statement that creates, changes or drops a database (a pg_dump --create dump: drill "
                    "creates the target database itself, so make the dump without -C)"
                    if objects[0] == "database" else
                    f"a statement on a {objects[0]}, which belongs to the whole server, not to the target database")
        if first == "alter" and second == "system":
            return "ALTER SYSTEM changes the server's configuration"
    if first == "load":
        return "LOAD loads a library into the server"
    if first in ("grant", "revoke", "comment", "security"):
        values = [t.value for t in statement.tokens]
        for index in range(len(values) - 1):
            if values[index] == "on" and values[index + 1] in ("database", "tablespace"):
                return f"a statement on a {values[index + 1]}, not on the target's own objects"
    if first == "copy" and not copies_from_stdin(statement):
        return ("a COPY that is not `COPY table FROM stdin` (COPY ... PROGRAM runs a program on the "
                "server; COPY ... 'file' reads or writes the server's files)")
    return None


def is_copy(statement: Statement) -> bool:
    """A COPY statement (checked by refusal(): its data follows on the next lines)."""
    return statement.words(1) == ["copy"]


def copies_from_stdin(statement: Statement) -> bool:
    """Only `COPY name [(columns)] FROM stdin [options]`: its data follows on the next lines."""
    tokens = statement.tokens
    index, depth = 1, 0
    # the table: words, quoted identifiers and dots; then an optional column list
    while index < len(tokens) and (tokens[index].kind in ("word", "ident") or tokens[index].value == "."):
        if tokens[index].value == "from":
            break
        index += 1
    if index < len(tokens) and tokens[index].value == "(":
        while index < len(tokens):
            depth += {"(": 1, ")": -1}.get(tokens[index].value, 0)
            index += 1
            if depth == 0:
                break
    following = [t.value for t in tokens[index:index + 2]]
    return index >= 2 and following == ["from", "stdin"]


def owner_or_grant(statement: Statement) -> bool:
    """The statements pg_restore --no-owner --no-privileges leaves out."""
    words = statement.words(3)
    first = words[0]
    if first in ("grant", "revoke"):
        return True
    if words[:3] == ["alter", "default", "privileges"]:
        return True
    if first in ("set", "reset") and (words[1:3] == ["session", "authorization"] or words[1:2] == ["role"]):
        return True
    last = [t.value for t in statement.last]
    return (first == "alter" and len(last) >= 3 and last[-3:-1] == ["owner", "to"]
            and "rename" not in (t.value for t in statement.tokens))
