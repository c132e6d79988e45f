"""Plain SQL backups are data, not a program (DESIGN, safety invariant 2).

A `.sql` or `.sql.gz` backup is fed to `psql`, which also runs psql meta-commands: `\\! cmd` runs a
shell command, `\\o file` and `\\copy` write files, `\\connect otherdb` moves the restore to another
database. This module reads such a file the way psql's lexer does (strings, E'' strings, dollar
quotes, quoted identifiers, nested comments, parentheses, BEGIN ATOMIC bodies, COPY ... FROM stdin
data up to its `\\.` line) and refuses, before the target is touched:

- every meta-command except the ones pg_dump writes for the target itself: `\\restrict KEY`,
  `\\unrestrict KEY` and `\\connect TARGET`, each alone on its line;
- statements that reach beyond the target database: CREATE/ALTER/DROP DATABASE (a `pg_dump -C`
  dump: drill creates the target itself), ROLE/USER/GROUP/TABLESPACE, ALTER SYSTEM, LOAD, GRANT,
  REVOKE or COMMENT on a database or tablespace, and every COPY that is not `COPY table FROM stdin`
  (COPY ... PROGRAM runs a program on the server, COPY ... 'file' reads or writes its files);
- anything that psql could read differently from this module: a NUL byte, and a quote preceded by
  an odd number of backslashes inside a '...' string (its end depends on standard_conforming_strings,
  which the file itself could change).

When asked (owners and grants skipped on a throwaway target, see `restore_owners`), `filtered`
also leaves out the statements `pg_restore --no-owner --no-privileges` would: ALTER ... OWNER TO,
GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, SET/RESET SESSION AUTHORIZATION and ROLE.

Works on bytes: every byte psql's lexer cares about is ASCII, and in UTF-8 and the single-byte
encodings no multi-byte character contains one. (In the client-only multi-byte encodings such as
SJIS a trailing byte can look like a backslash: this module then sees a meta-command that psql would
not, and refuses; it never misses one.)

The parts: sql_lexer.py (psql's lexer: where statements end, what is a meta-command), sql_rules.py
(what a statement may do on the target), and here the reading of a file line by line (meta-commands,
COPY data) with its summary.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drill.stores.postgres import sql_rules
from drill.stores.postgres.sql_lexer import (
    DOLLAR,
    DQUOTE,
    ESTRING,
    NORMAL,
    SQUOTE,
    PsqlLexer,
    Statement,
    Token,
    UnsafeBackup,
)

__all__ = ["SqlScanner", "SqlSummary", "Token", "UnsafeBackup", "check_file", "filtered"]

_ALLOWED_META = re.compile(rb"^\\(?P<cmd>restrict|unrestrict|connect|c)[ \t]+(?P<arg>[^\s\\]+)[ \t]*\r?\n?$")
_RESTRICT_KEY = re.compile(rb"[A-Za-z0-9]+")
_COPY_END = (b"\\.\n", b"\\.\r\n")


class SqlScanner(PsqlLexer):
    """Feed it a plain SQL file line by line; it raises UnsafeBackup on the first thing that is not data."""

    def __init__(self, source: str, target: str, *, skip_owners: bool = False, keep_text: bool = False) -> None:
        super().__init__(source, keep_text=keep_text or skip_owners)
        self.target = target
        self.skip_owners = skip_owners
        self.in_copy = False
        self.copy_pending = False  # the COPY ... FROM stdin statement ended on this line: data starts on the next
        self.statements = 0
        self.skipped = 0
        self.copies = 0

    # -- lines ----------------------------------------------------------------------------------------------

    def feed(self, line: bytes) -> Iterator[bytes]:
        """Check one line (with its newline); yield what goes to psql (the line itself unless filtering)."""
        self.line += 1
        if b"\x00" in line:
            raise self.refuse("a NUL byte (psql would stop reading the line there)", line.replace(b"\x00", b"?"))
        if self.in_copy:
            if line in _COPY_END:
                self.in_copy = False
            yield line
            return
        if self.state == NORMAL and line.startswith(b"\\"):
            self.meta_command(line)
            yield line
            return
        yield from self.scan(line)
        if self.copy_pending:
            self.copy_pending = False
            self.in_copy = True

    def finish(self) -> Iterator[bytes]:
        """End of file: a statement without its `;` is still sent by psql (and checked here)."""
        if self.state == NORMAL and self.statement.count:
            sent = self.end_statement(b"")
            if sent is not None:
                yield sent

    def meta_command(self, line: bytes) -> None:
        found = _ALLOWED_META.match(line)
        if found is None:
            raise self.refuse("a psql meta-command (only \\restrict, \\unrestrict and \\connect to the target are "
                              "allowed, each alone on its line)", line)
        cmd, arg = found.group("cmd"), found.group("arg")
        if cmd in (b"restrict", b"unrestrict"):
            if not _RESTRICT_KEY.fullmatch(arg):
                raise self.refuse("a \\restrict key that pg_dump would not write", line)
            return
        name = arg.decode("utf-8", "replace")
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('""', '"')
        if name != self.target:
            raise self.refuse(f"\\connect to another database than the restore target {self.target!r}", line)

    # -- statements ------------------------------------------------------------------------------------------

    def end_statement(self, tail: bytes) -> bytes | None:
        statement = self.statement
        self.statements += 1
        self.check(statement)
        kept = not (self.skip_owners and sql_rules.owner_or_grant(statement))
        self.skipped += 0 if kept else 1
        self.statement = Statement()
        return b"".join([*statement.parts, tail]) if self.keep_text and kept else None

    def check(self, statement: Statement) -> None:
        why = sql_rules.refusal(statement)
        if why is not None:
            text = " ".join(t.value for t in statement.tokens[:8]).encode()
            raise self.refuse(why, text, statement.start_line or self.line)
        if sql_rules.is_copy(statement):
            self.copy_pending = True
            self.copies += 1


def _lines(path: Path, gz: bool) -> Iterator[bytes]:
    if gz:
        with gzip.open(path, "rb") as unzipped:
            yield from unzipped
    else:
        with path.open("rb") as plain:
            yield from plain


@dataclass
class SqlSummary:
    statements: int
    copies: int
    skipped: int  # owner and grant statements left out


def check_file(path: Path, gz: bool, target: str, *, skip_owners: bool = False) -> SqlSummary:
    """Read the whole file; UnsafeBackup (naming the line) on the first thing that is not data for `target`."""
    scanner = SqlScanner(str(path), target, skip_owners=skip_owners)
    for line in _lines(path, gz):
        for _ in scanner.feed(line):
            pass
    for _ in scanner.finish():
        pass
    _check_end(scanner)
    return SqlSummary(scanner.statements, scanner.copies, scanner.skipped)


def filtered(path: Path, gz: bool, target: str, *, skip_owners: bool) -> Iterator[bytes]:
    """The file as psql should get it: checked again while it is read, owner and grant statements left out when
    `skip_owners` (check_file first: this generator stops half-way on a problem)."""
    scanner = SqlScanner(str(path), target, skip_owners=skip_owners)
    for line in _lines(path, gz):
        yield from scanner.feed(line)
    yield from scanner.finish()
    _check_end(scanner)


def _check_end(scanner: SqlScanner) -> None:
    if scanner.in_copy:
        return  # psql ends COPY data at the end of the input too
    if scanner.state in (SQUOTE, ESTRING, DQUOTE, DOLLAR):
        raise scanner.refuse("the file ends inside a quoted string (truncated?)", b"", scanner.line)
