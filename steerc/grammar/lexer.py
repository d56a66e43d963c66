"""Tokens for the steer language, from the terminals steer.lark defines.

One compiled regex with a named group per terminal (built from the grammar, so the
`.lark` file stays the only definition of the token syntax). Keywords lex as NAME and are
then looked up, as Lark does. Unlike Lark's lexer this one does not stop at the first
character that starts no token: it reports a `LexProblem`, skips, and goes on, so one bad
character does not hide later errors. Comments are returned on the side for the formatter.

No token but the `\\n` separator spans a newline (strings and comments stop at one), so the
line/column arithmetic below only has to watch `_SEP`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from lark import Lark, Token

_WS = re.compile(r"[ \t\f\r]*")


@dataclass(frozen=True)
class LexProblem:
    """Text no terminal matches: `kind` is "string" (an unterminated string literal) or
    "char" (a run of characters that start no token). `line`/`col` 1-based, `pos` 0-based."""

    kind: str
    text: str
    pos: int
    line: int
    col: int


@dataclass(frozen=True)
class Lexer:
    """The compiled token regex and keyword table of one grammar."""

    regex: re.Pattern
    keywords: dict[str, str]  # keyword text -> terminal name ("suppress" -> "SUPPRESS")


def make_lexer(parser: Lark) -> Lexer:
    """A Lexer for `parser`'s terminals (WS is skipped, COMMENT kept on the side)."""
    word = re.compile(r"[A-Za-z_]\w*")
    keywords, others = {}, []
    for t in parser.terminals:
        if t.name == "WS":
            continue
        if t.pattern.type == "str" and word.fullmatch(t.pattern.value):
            keywords[t.pattern.value] = t.name
        else:
            others.append(t)
    # Lark's own precedence: priority, then the longest possible match.
    others.sort(key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    alternatives = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in others)
    return Lexer(re.compile(r"[ \t\f\r]*(?:" + alternatives + ")"), keywords)


def tokenize(lexer: Lexer, text: str, comments: list[Token]) -> Iterator[Token | LexProblem]:
    """Yield the significant tokens of `text` and a `LexProblem` for each unlexable stretch.

    Appends COMMENT tokens to `comments`. Never raises for any input string.
    """
    match, keywords = lexer.regex.match, lexer.keywords
    pos, line, line_start, n = 0, 1, 0, len(text)
    while pos < n:
        m = match(text, pos)
        if m is None:
            start = _WS.match(text, pos).end()
            if start >= n:
                return
            kind, length = _problem(lexer, text, start)
            yield LexProblem(kind, text[start:start + length], start, line, start - line_start + 1)
            pos = start + length
            continue
        kind = m.lastgroup
        start, pos = m.start(kind), m.end()
        value = m.group(kind)
        col = start - line_start + 1
        if kind == "NAME":
            kind = keywords.get(value, "NAME")
        elif kind == "COMMENT":
            comments.append(Token(kind, value, start, line, col, line, col + len(value), pos))
            continue
        elif kind == "_SEP" and value == "\n":
            yield Token(kind, value, start, line, col, line + 1, 1, pos)
            line, line_start = line + 1, pos
            continue
        yield Token(kind, value, start, line, col, line, col + len(value), pos)


def _problem(lexer: Lexer, text: str, pos: int) -> tuple[str, int]:
    if text[pos] == '"':
        end = text.find("\n", pos)
        return "string", (len(text) if end < 0 else end) - pos
    # A run of characters that start no token (a newline ends it: it separates statements).
    end = pos + 1
    while end < len(text) and text[end] not in " \t\n" and lexer.regex.match(text, end) is None:
        end += 1
    return "char", end - pos
