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
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from drill.errors import SafetyError
from drill.redact import redact_text


class UnsafeBackup(SafetyError):
    """A plain SQL backup holds something that is not data for its target: refused before anything runs."""


NORMAL, SQUOTE, ESTRING, DQUOTE, DOLLAR, COMMENT = range(6)

_TOKEN = re.compile(
    rb"""(?P<space>[ \t\r\n\f\v]+)
       |(?P<line_comment>--[^\n]*)
       |(?P<block_comment>/\*)
       |(?P<estring>[Ee]')
       |(?P<word>[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)
       |(?P<squote>')
       |(?P<dquote>")
       |(?P<dollar>\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$)
       |(?P<backslash>\\)
       |(?P<semicolon>;)
       |(?P<open>\()
       |(?P<close>\))
       |(?P<other>[0-9]+|[^'"$\\;()A-Za-z_\x80-\xff \t\r\n\f\v/-]+|.)""",
    re.VERBOSE | re.DOTALL)
_SQUOTE_TEXT = re.compile(rb"[^'\\]*")
_ESTRING_TEXT = re.compile(rb"[^'\\]*")
_DQUOTE_TEXT = re.compile(rb'[^"]*')
_COMMENT_TEXT = re.compile(rb"(?:[^*/]|\*(?!/)|/(?!\*))*")
_ALLOWED_META = re.compile(rb"^\\(?P<cmd>restrict|unrestrict|connect|c)[ \t]+(?P<arg>[^\s\\]+)[ \t]*\r?\n?$")
_RESTRICT_KEY = re.compile(rb"[A-Za-z0-9]+")
_COPY_END = (b"\\.\n", b"\\.\r\n")
_MAX_TOKENS = 64
# Statements whose words matter beyond the first few (checks, owner filtering, psql's BEGIN ATOMIC heuristic);
# every other statement (INSERT, SELECT, SET ...: the bulk of a dump made with --inserts) is read fast after
# its first words: only what changes psql's lexing (quotes, comments, parentheses, ;, \\) is looked at.
_WORDY = frozenset({"create", "alter", "drop", "copy", "grant", "revoke", "comment", "security", "load", "set",
                    "reset"})
_FIRST_WORDS = 4
# A run of bytes that cannot change the lexer's state: identifiers (with their `$`s, but not an E'' prefix),
# numbers, spaces, operators other than the starts of comments, and whole '...' strings on one line with no
# backslash (their end is the same whatever standard_conforming_strings says; '' reads as two strings).
_PLAIN_RUN = re.compile(rb"""(?:(?![Ee]')[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*|[0-9]+|[ \t\r\n\f\v]+
                               |'[^'\\\n]*'|[,.:=<>+*%^&|!~?@#\[\]{}`]|-(?!-)|/(?!\*))+""", re.VERBOSE)
_CLUSTER_OBJECTS = {"database", "role", "user", "group", "tablespace"}


@dataclass
class Token:
    kind: str  # word (lower-cased) | ident (a "quoted" identifier) | punct
    value: str


@dataclass
class _Statement:
    start_line: int = 0
    tokens: list[Token] = field(default_factory=list)
    last: list[Token] = field(default_factory=list)  # the last 4 tokens, whatever the length
    count: int = 0
    parts: list[bytes] = field(default_factory=list)  # its text, kept only when filtering
    # psql's heuristics for CREATE FUNCTION ... BEGIN ATOMIC bodies (psqlscan.l): `;` inside does not end it.
    identifiers: str = ""
    identifier_count: int = 0
    begin_depth: int = 0
    paren_depth: int = 0
    fast: bool = False  # past its first words, and none of them makes its other words matter

    def add(self, token: Token) -> None:
        # A COPY keeps all its tokens (its column list can be long): check_copy reads them to the FROM.
        if self.count < _MAX_TOKENS or (self.tokens and self.tokens[0].value == "copy"):
            self.tokens.append(token)
        self.count += 1
        self.last = [*self.last[-3:], token]
        if self.count == _FIRST_WORDS and self.tokens[0].value not in _WORDY:
            self.fast = True

    def words(self, n: int) -> list[str]:
        return [t.value if t.kind == "word" else "" for t in self.tokens[:n]]


class SqlScanner:
    """Feed it a plain SQL file line by line; it raises UnsafeBackup on the first thing that is not data."""

    def __init__(self, source: str, target: str, *, skip_owners: bool = False, keep_text: bool = False) -> None:
        self.source = source
        self.target = target
        self.skip_owners = skip_owners
        self.keep_text = keep_text or skip_owners
        self.state = NORMAL
        self.depth = 0  # nesting of /* */ comments
        self.tag = b""  # the $tag$ of the dollar quote being read
        self.in_copy = False
        self.copy_pending = False  # the COPY ... FROM stdin statement ended on this line: data starts on the next
        self.statement = _Statement()
        self.line = 0
        self.statements = 0
        self.skipped = 0
        self.copies = 0
        self.statement_kept = True  # whether the statement that just ended goes to psql
        self.finished_parts: list[bytes] = []  # its text (when keeping text)

    # -- errors -------------------------------------------------------------------------------------------

    def refuse(self, why: str, text: bytes, line: int | None = None) -> UnsafeBackup:
        shown = text.decode("utf-8", "replace").strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return UnsafeBackup(f"backup {self.source} is refused before the target is touched: line "
                            f"{line or self.line}: {why} ({redact_text(shown)!r}). A plain SQL backup must be "
                            f"data for its target only (README: Safety with live stores)")

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
            self.end_statement(b"")
            if self.keep_text and self.statement_kept:
                yield b"".join(self.finished_parts)

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

    # -- the lexer --------------------------------------------------------------------------------------------

    def scan(self, line: bytes) -> Iterator[bytes]:
        pos, n = 0, len(line)
        start = 0  # where the text not yet given to a statement starts
        while pos < n:
            if self.state == SQUOTE:
                pos = self._string_end(line, pos, escapes=False)
                continue
            if self.state == ESTRING:
                pos = self._string_end(line, pos, escapes=True)
                continue
            if self.state == DQUOTE:
                text = _DQUOTE_TEXT.match(line, pos)
                assert text is not None
                pos = text.end()
                if pos < n:  # a " : doubled means one quote, else the end
                    if line[pos + 1:pos + 2] == b'"':
                        pos += 2
                    else:
                        pos += 1
                        self.state = NORMAL
                        self.statement.add(Token("ident", ""))
                continue
            if self.state == DOLLAR:
                end = line.find(self.tag, pos)
                if end < 0:
                    pos = n
                else:
                    pos = end + len(self.tag)
                    self.state = NORMAL
                continue
            if self.state == COMMENT:
                text = _COMMENT_TEXT.match(line, pos)
                assert text is not None
                pos = text.end()
                if line.startswith(b"/*", pos):
                    self.depth += 1
                    pos += 2
                elif line.startswith(b"*/", pos):
                    self.depth -= 1
                    pos += 2
                    if self.depth == 0:
                        self.state = NORMAL
                continue
            if self.statement.fast:
                plain = _PLAIN_RUN.match(line, pos)
                if plain is not None:
                    pos = plain.end()
                    continue
            token = _TOKEN.match(line, pos)
            assert token is not None
            kind, value = token.lastgroup, token.group()
            pos = token.end()
            if kind in ("space", "line_comment"):
                continue
            if kind == "block_comment":
                self.state, self.depth = COMMENT, 1
            elif kind == "estring":
                self.state = ESTRING
                self.statement.add(Token("punct", "'"))
            elif kind == "squote":
                self.state = SQUOTE
                self.statement.add(Token("punct", "'"))
            elif kind == "dquote":
                self.state = DQUOTE
            elif kind == "dollar":
                self.state, self.tag = DOLLAR, value
                self.statement.add(Token("punct", "$"))
            elif kind == "backslash":
                raise self.refuse("a psql meta-command inside a line of SQL", line)
            elif kind == "word":
                self._word(value.decode("utf-8", "replace").lower())
            elif kind == "open":
                self.statement.paren_depth += 1
                self.statement.add(Token("punct", "("))
            elif kind == "close":
                self.statement.paren_depth = max(0, self.statement.paren_depth - 1)
                self.statement.add(Token("punct", ")"))
            elif kind == "semicolon":
                if self.statement.paren_depth == 0 and self.statement.begin_depth == 0:
                    if self.statement.count == 0:
                        continue  # an empty statement: psql sends nothing
                    self.end_statement(line[start:pos])
                    if self.keep_text and self.statement_kept:
                        yield b"".join(self.finished_parts)
                    start = pos
                    continue
                self.statement.add(Token("punct", ";"))
            else:
                self.statement.add(Token("punct", value.decode("utf-8", "replace")))
            if self.statement.count == 1 and not self.statement.start_line:
                self.statement.start_line = self.line
        rest = line[start:]
        if not self.keep_text:
            yield line
        elif self.statement.count or self.state != NORMAL:
            self.statement.parts.append(rest)
        elif rest.strip():
            self.statement.parts.append(rest)  # comments before the next statement go with it
        else:
            yield rest

    def _string_end(self, line: bytes, pos: int, *, escapes: bool) -> int:
        text = (_ESTRING_TEXT if escapes else _SQUOTE_TEXT).match(line, pos)
        assert text is not None
        pos = text.end()
        if pos >= len(line):
            return pos
        if line[pos:pos + 1] == b"\\":
            run = len(line[pos:]) - len(line[pos:].lstrip(b"\\"))
            after = line[pos + run:pos + run + 1]
            if escapes:  # E'': each backslash escapes the next byte
                return pos + run + (1 if run % 2 else 0)
            if after == b"'" and run % 2:
                raise self.refuse("a quote after an odd number of backslashes in a '...' string (where it ends "
                                  "depends on standard_conforming_strings)", line)
            return pos + run
        # a quote: doubled means one quote, else the end of the string
        if line[pos + 1:pos + 2] == b"'":
            return pos + 2
        self.state = NORMAL
        return pos + 1

    def _word(self, word: str) -> None:
        statement = self.statement
        # psqlscan.l: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN ... END (and CASE ... END inside
        # it) are counted so that the body's semicolons do not end the statement.
        if statement.identifier_count < 4:
            statement.identifiers += word[0] if word in ("create", "function", "procedure", "or", "replace") else " "
        statement.identifier_count += 1
        ids = statement.identifiers
        in_function = ids[:1] == "c" and (ids[1:2] in ("f", "p") or (ids[1:3] == "or" and ids[3:4] in ("f", "p")))
        if in_function and statement.paren_depth == 0:
            if word == "begin" or (word == "case" and statement.begin_depth >= 1):
                statement.begin_depth += 1
            elif word == "end" and statement.begin_depth > 0:
                statement.begin_depth -= 1
        statement.add(Token("word", word))

    # -- statements ------------------------------------------------------------------------------------------

    def end_statement(self, tail: bytes) -> None:
        statement = self.statement
        self.statements += 1
        self.check(statement)
        self.statement_kept = not (self.skip_owners and _owner_or_grant(statement))
        self.skipped += 0 if self.statement_kept else 1
        self.finished_parts = [*statement.parts, tail]
        self.statement = _Statement()

    def check(self, statement: _Statement) -> None:
        words = statement.words(4)
        first, second = words[0], words[1] if len(words) > 1 else ""
        if first not in _WORDY:
            return  # nothing to refuse: INSERT, SELECT, UPDATE ... act on the target's own objects
        line = statement.start_line or self.line
        text = " ".join(t.value for t in statement.tokens[:8]).encode()
        if first in ("create", "alter", "drop"):
            objects = [w for w in words[1:4] if w]
            # CREATE [UNIQUE ...] is never one of these; `CREATE OR REPLACE` neither.
            if objects and objects[0] in _CLUSTER_OBJECTS and objects[:2] != ["user", "mapping"]:
                why = ("a statement that creates, changes or drops a database (a pg_dump --create dump: drill "
                       "creates the target database itself, so make the dump without -C)"
                       if objects[0] == "database" else
                       f"a statement on a {objects[0]}, which belongs to the whole server, not to the target database")
                raise self.refuse(why, text, line)
            if first == "alter" and second == "system":
                raise self.refuse("ALTER SYSTEM changes the server's configuration", text, line)
        if first == "load":
            raise self.refuse("LOAD loads a library into the server", text, line)
        if first in ("grant", "revoke", "comment", "security"):
            values = [t.value for t in statement.tokens]
            for index in range(len(values) - 1):
                if values[index] == "on" and values[index + 1] in ("database", "tablespace"):
                    raise self.refuse(f"a statement on a {values[index + 1]}, not on the target's own objects", text,
                                      line)
        if first == "copy":
            self.check_copy(statement, text, line)

    def check_copy(self, statement: _Statement, text: bytes, line: int) -> None:
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
        if index < 2 or following != ["from", "stdin"]:
            raise self.refuse("a COPY that is not `COPY table FROM stdin` (COPY ... PROGRAM runs a program on the "
                              "server; COPY ... 'file' reads or writes the server's files)", text, line)
        self.copy_pending = True
        self.copies += 1


def _owner_or_grant(statement: _Statement) -> bool:
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
