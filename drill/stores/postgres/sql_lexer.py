"""Plain SQL read the way psql's lexer reads it (psqlscan.l), on bytes, a line at a time.

Strings, E'' strings, dollar quotes, quoted identifiers, nested comments, parentheses and the
BEGIN ATOMIC bodies of CREATE FUNCTION: what decides where a statement ends and whether a backslash
starts a psql meta-command. The lexer collects each statement's first words (drill.stores.postgres.
sql_rules judges them) and hands it on when it ends; it refuses what psql could read differently
from it (a backslash meta-command inside a line of SQL, a quote after an odd number of backslashes).
Every byte psql's lexer cares about is ASCII (see drill.stores.postgres.sql_guard).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

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
_MAX_TOKENS = 64
# Statements whose words matter beyond the first few (checks, owner filtering, psql's BEGIN ATOMIC heuristic);
# every other statement (INSERT, SELECT, SET ...: the bulk of a dump made with --inserts) is read fast after
# its first words: only what changes psql's lexing (quotes, comments, parentheses, ;, \\) is looked at.
WORDY = frozenset({"create", "alter", "drop", "copy", "grant", "revoke", "comment", "security", "load", "set",
                   "reset"})
_FIRST_WORDS = 4
# A run of bytes that cannot change the lexer's state: identifiers (with their `$`s, but not an E'' prefix),
# numbers, spaces, operators other than the starts of comments, and whole '...' strings on one line with no
# backslash (their end is the same whatever standard_conforming_strings says; '' reads as two strings).
_PLAIN_RUN = re.compile(rb"""(?:(?![Ee]')[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*|[0-9]+|[ \t\r\n\f\v]+
                               |'[^'\\\n]*'|[,.:=<>+*%^&|!~?@#\[\]{}`]|-(?!-)|/(?!\*))+""", re.VERBOSE)


@dataclass
class Token:
    kind: str  # word (lower-cased) | ident (a "quoted" identifier) | punct
    value: str


@dataclass
class Statement:
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
        if self.count == _FIRST_WORDS and self.tokens[0].value not in WORDY:
            self.fast = True

    def words(self, n: int) -> list[str]:
        return [t.value if t.kind == "word" else "" for t in self.tokens[:n]]


class PsqlLexer:
    """The lexer's state across lines; a subclass decides what an ended statement becomes (`end_statement`)."""

    def __init__(self, source: str, *, keep_text: bool) -> None:
        self.source = source
        self.keep_text = keep_text  # keep each statement's text, to send it on (or leave it out)
        self.state = NORMAL
        self.depth = 0  # nesting of /* */ comments
        self.tag = b""  # the $tag$ of the dollar quote being read
        self.statement = Statement()
        self.line = 0

    def refuse(self, why: str, text: bytes, line: int | None = None) -> UnsafeBackup:
        shown = text.decode("utf-8", "replace").strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return UnsafeBackup(f"backup {self.source} is refused before the target is touched: line "
                            f"{line or self.line}: {why} ({redact_text(shown)!r}). A plain SQL backup must be "
                            f"data for its target only (README: Safety with live stores)")

    def end_statement(self, tail: bytes) -> bytes | None:
        """The statement ended (`tail`: its text on this line); returns the text to send on, None for nothing."""
        raise NotImplementedError

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
                    sent = self.end_statement(line[start:pos])
                    if sent is not None:
                        yield sent
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
