"""Tokens for the steer language: Lark's lexer for steer.lark, made error-tolerant.

Lark's lexer stops at the first character no terminal matches. `tokenize` records that
problem, skips past it, and goes on, so one bad character does not hide every later
error. Comments are returned on the side (the formatter puts them back).
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from typing import Iterator

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters
from lark.lexer import BasicLexer, LexerState
from lark.utils import TextSlice

SKIPPED = frozenset({"WS", "COMMENT"})


@dataclass(frozen=True)
class LexProblem:
    """Text no terminal matches: `kind` is "string" (an unterminated string literal) or
    "char" (a run of characters that start no token). Positions are 1-based; `pos` 0-based."""

    kind: str
    text: str
    pos: int
    line: int
    col: int


def make_lexer(parser: Lark) -> BasicLexer:
    """A lexer for `parser`'s terminals that also returns WS and COMMENT tokens."""
    conf = copy(parser.lexer_conf)
    conf.ignore = ()
    return BasicLexer(conf)


def _problem_length(lexer: BasicLexer, text: str, pos: int) -> tuple[str, int]:
    if text[pos] == '"':
        end = text.find("\n", pos)
        return "string", (len(text) if end < 0 else end) - pos
    # A run of characters that start no token (stop at a newline: it separates statements).
    end = pos + 1
    src = TextSlice(text, 0, len(text))
    while end < len(text) and text[end] != "\n" and lexer.match(src, end) is None:
        end += 1
    return "char", end - pos


def tokenize(lexer: BasicLexer, text: str, comments: list[Token]) -> Iterator[Token | LexProblem]:
    """Yield the significant tokens of `text` and a `LexProblem` for each unlexable stretch.

    Appends COMMENT tokens to `comments`. Never raises for any input string.
    """
    state = LexerState(TextSlice(text, 0, len(text)))
    while True:
        try:
            tok = lexer.next_token(state)
        except EOFError:
            return
        except UnexpectedCharacters as e:
            kind, n = _problem_length(lexer, text, e.pos_in_stream)
            yield LexProblem(kind, text[e.pos_in_stream:e.pos_in_stream + n], e.pos_in_stream, e.line, e.column)
            state.line_ctr.feed(text[e.pos_in_stream:e.pos_in_stream + n])
            continue
        if tok.type in SKIPPED:
            if tok.type == "COMMENT":
                comments.append(tok)
            continue
        yield tok
