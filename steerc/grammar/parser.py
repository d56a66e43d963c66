"""Text -> `ast.Spec`: the steer language's parser, with error recovery.

The LALR parser is built once per process from steer.lark. `parse` drives it token by
token so that it can recover from a syntax error (panic mode: pop the parser stack back
to a statement boundary, skip to the next newline, `;` or `}`) and report every error
in one `DiagnosticError` rather than only the first.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedToken
from lark.parsers.lalr_analysis import Shift

from steerc.compiler import ast
from steerc.diagnostics import (Collector, Diagnostic, DiagnosticError, Span, is_spec_file,
                                register_spec_source)
from steerc.files import read
from steerc.grammar.errors import STATEMENT_WORDS, classify, classify_lex
from steerc.grammar.lexer import LexProblem, make_lexer, tokenize
from steerc.grammar.transform import Builder

MAX_ERRORS = 50  # past this, errors are usually one mistake echoing (or not a steer file)



def _cache_file() -> str | bool:
    """Where Lark keeps the LALR tables (it checks the grammar's hash on load): the user's
    own cache folder, not the shared temp dir Lark picks by default (the file is a pickle)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "steerc"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(base / f"steer-lalr-py{sys.version_info[0]}{sys.version_info[1]}.cache")


# Cached, importing this module costs ~10 ms instead of ~200 ms on every CLI run.
_PARSER = Lark.open("steer.lark", rel_to=__file__, parser="lalr", lexer="basic",
                    propagate_positions=True, maybe_placeholders=True, cache=_cache_file())
_LEXER = make_lexer(_PARSER)
_STATEMENT_TERMINALS = frozenset(w.upper() for w in STATEMENT_WORDS)


def parse(text: str, file: str = "<string>") -> ast.Spec:
    """Parse steer source `text`; spans name `file`. Raises DiagnosticError (E0xx) listing
    every syntax error found, never anything else."""
    diags = Collector()
    comments: list[Token] = []
    # The parse allocates ~10 objects per token and none of them form cycles; pausing the
    # cyclic GC (refcounting still frees everything) makes big specs ~1.5-2x faster.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        tree = _Recovering(text, file, diags).run(comments)
        if tree is None:
            raise DiagnosticError(diags.diagnostics)
        spec = Builder(text, file, diags, report_empty_when=not diags.has_errors).spec(tree, comments)
    finally:
        if gc_was_on:
            gc.enable()
    diags.check()
    return spec


def parse_file(path: str | Path) -> ast.Spec:
    """Read and parse a `.steer` file (spans carry `path` as given). Unreadable files,
    NUL bytes and invalid UTF-8 are DiagnosticErrors (E018, E019), not exceptions.

    A file that is not named `*.steer` (symlinks resolved) and does not parse is one E018
    that quotes none of its content: `use "/etc/shadow"` or a `x.steer -> ~/.netrc` symlink
    must not print a secret's first words into a CI log. A file that parses is registered
    as a spec source: diagnostics may show its lines."""
    file = str(path)
    try:
        return _parse_file(path, file)
    except DiagnosticError as e:
        if is_spec_file(file) or all(d.code == "E019" for d in e.diagnostics):
            raise
        first = next((d.span for d in e.diagnostics if d.span and d.span.line > 0), None)
        where = f", the first at line {first.line}, column {first.col}" if first else ""
        n = len(e.diagnostics)
        raise DiagnosticError([Diagnostic(
            "E018", f"{file} is not a steer spec: it does not parse ({n} syntax "
            f"error{'s' * (n != 1)}{where}); its content is not shown",
            Span(file, 0, 0), "steerc only quotes the lines of files named `*.steer` (symlinks followed); "
            "check that this path names a spec")]) from None


def _parse_file(path: str | Path, file: str) -> ast.Spec:
    text = read_spec(path)
    if is_spec_file(file):
        register_spec_source(file, text)  # the bytes parsed are the ones shown
    spec = parse(text, file)
    register_spec_source(file, text)
    return spec


def read_spec(path: str | Path) -> str:
    """A `.steer` file's text, BOM removed: E019 when it cannot be read (missing, not a
    regular file, over the size limit), E018 for invalid UTF-8 or a NUL byte."""
    file = str(path)
    return decode_spec(read.read_bytes(path, read.SPEC, Span(file, 0, 0)), file)


def decode_spec(data: bytes, file: str) -> str:
    """A spec file's bytes as text, BOM removed; E018 for invalid UTF-8 or a NUL byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _line_col(data[:e.start].decode("utf-8", errors="replace"))
        raise DiagnosticError([Diagnostic("E018", f"invalid UTF-8 (byte 0x{data[e.start]:02x})",
                                          Span(file, line, col), "save the file as UTF-8")]) from None
    if "\0" in text:
        line, col = _line_col(text[:text.index("\0")])
        raise DiagnosticError([Diagnostic("E018", "the file contains a NUL byte", Span(file, line, col),
                                          "is this a binary file? steer specs are UTF-8 text")])
    return text.removeprefix("\ufeff")


def _line_col(before: str) -> tuple[int, int]:
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


class _Recovering:
    """One parse of one text: feeds tokens to Lark's LALR state machine and recovers."""

    def __init__(self, text: str, file: str, diags: Collector):
        self.text, self.file, self.diags = text, file, diags
        self.ps = _PARSER.parse_interactive("").parser_state
        self.table = self.ps.parse_conf.parse_table.states
        self.error_lines: set[int] = set()
        self.skipped_braces = 0  # `{` skipped while recovering: their `}` are not errors
        self.reported_braces: set[int] = set()

    def accepts(self, name: str) -> bool:
        return name in self.table[self.ps.position]

    def report(self, diag: Diagnostic) -> bool:
        """Record `diag` unless its line already has one (a cascade); False past MAX_ERRORS."""
        line = diag.span.line if diag.span else 0
        if line not in self.error_lines:
            self.error_lines.add(line)
            self.diags.diagnostics.append(diag)
        if len(self.diags.diagnostics) >= MAX_ERRORS:
            self.diags.error("E026", f"too many syntax errors; stopped after {MAX_ERRORS}",
                             None, "fix the first errors and run again")
            return False
        return True

    def expected(self) -> set[str]:
        """The terminals that can really come next. The table row alone over-promises:
        LALR merges states, so a row may reduce on a look-ahead that fails one step later."""
        ok = set()
        for name in self.table[self.ps.position]:
            if not name.isupper():  # a rule's goto entry, not a terminal
                continue
            # shallow: feeding only pushes/pops; a deep copy is O(tree) and recursed past
            # Python's limit on deep `when` nesting (RecursionError found by fuzzing)
            trial = self.ps.copy(deepcopy_values=False)
            try:
                trial.feed_token(Token(name, ""), name == "$END")
            except UnexpectedToken:
                continue
            ok.add(name)
        return ok

    def pop_until(self, name: str) -> None:
        """Pop parser states until the top one accepts terminal `name` (the bottom always
        accepts `_SEP` and `$END`; a block's `{` state accepts `_SEP` and `}`)."""
        states, values = self.ps.state_stack, self.ps.value_stack
        while len(states) > 1 and not self.accepts(name):
            states.pop()
            values.pop()

    def feed_sync(self, tok: Token) -> Tree | None:
        """Feed a synchronising token (`_SEP`, `}`, `$END`), popping states until it fits."""
        while True:
            self.pop_until(tok.type)
            if not self.accepts(tok.type):  # only at the bottom: nothing can take it
                return None
            try:
                return self.ps.feed_token(tok, tok.type == "$END")
            except UnexpectedToken:
                # An LALR reduce on a merged look-ahead led to a state that refuses it.
                if len(self.ps.state_stack) == 1:
                    return None
                self.ps.state_stack.pop()
                self.ps.value_stack.pop()

    def run(self, comments: list[Token]) -> Tree | None:
        # Lark's ParserState.feed_token, inlined for speed (this loop is most of a parse);
        # any token the table refuses goes to the recovering path below.
        states, values = self.ps.state_stack, self.ps.value_stack
        table, callbacks = self.table, self.ps.parse_conf.callbacks
        recovering = False
        for item in tokenize(_LEXER, self.text, comments):
            if not recovering and item.__class__ is Token:
                typ = item.type
                while True:
                    act = table[states[-1]].get(typ)
                    if act is None:
                        break
                    action, arg = act
                    if action is Shift:
                        states.append(arg)
                        values.append(item)
                        break
                    size = len(arg.expansion)
                    if size:
                        children = values[-size:]
                        del states[-size:]
                        del values[-size:]
                    else:
                        children = []
                    values.append(callbacks[arg](children))
                    states.append(table[states[-1]][arg.origin.name][1])
                if act is not None:
                    continue
            ok, recovering = self.slow(item, recovering)
            if not ok:
                return None
        return self.finish(recovering)

    def slow(self, item: Token | LexProblem, recovering: bool) -> tuple[bool, bool]:
        """Handle a lexing problem, a refused token, or a token skipped while recovering.
        Returns (go on?, recovering?)."""
        if isinstance(item, LexProblem):
            # `expected()` costs ~1 ms (a trial parse per terminal): only for a line with no
            # error yet, which is the only one `report` keeps (a 200 KB line of junk took minutes)
            ok = item.line in self.error_lines or self.report(classify_lex(item, self.expected(), self.file))
            return ok, recovering or item.kind == "string"
        if recovering:
            if item.type == "LBRACE":
                self.skipped_braces += 1
            elif item.type == "RBRACE" and self.skipped_braces:
                self.skipped_braces -= 1
            elif item.type == "_SEP" or item.type == "RBRACE" and self.open_braces():
                self.feed_sync(item)
                return True, False
            return True, True
        if item.type == "RBRACE" and self.skipped_braces:
            self.skipped_braces -= 1
            return True, False
        try:
            self.ps.feed_token(item)
            return True, False
        except UnexpectedToken:
            if item.line not in self.error_lines and not self.report(classify(item, self.expected(), self.file, self.statement())):
                return False, False
            if item.type == "_SEP" or item.type == "RBRACE" and self.open_braces():
                self.feed_sync(item)
                return True, False
            if item.type == "RBRACE":  # no block open: drop it
                return True, False
            self.skipped_braces += item.type == "LBRACE"
            return True, True

    def finish(self, recovering: bool) -> Tree | None:
        end = Token("$END", "", len(self.text), *_line_col(self.text))
        first = True
        while True:
            try:
                return self.ps.feed_token(end, True)
            except UnexpectedToken:
                if first:
                    # A statement cut off by the end of the file is one error; an unclosed
                    # block one more. Checked once: the pops below can be thousands deep.
                    first = False
                    expected = self.expected()
                    if not recovering and "RBRACE" not in expected:
                        if not self.report(classify(end, expected, self.file, self.statement())):
                            return None
                    diag = self.missing_brace()
                    if diag is not None and not self.report(diag):
                        return None
                if len(self.ps.state_stack) == 1:
                    return None
                self.ps.state_stack.pop()
                self.ps.value_stack.pop()

    def statement(self) -> str | None:
        """The keyword terminal (`EXPECT`, ...) that opened the statement being parsed, if any:
        the innermost keyword token still on the value stack (a finished statement is a tree)."""
        for v in reversed(self.ps.value_stack):
            if isinstance(v, Token) and v.type in _STATEMENT_TERMINALS:
                return v.type
        return None

    def open_braces(self) -> list[Token]:
        return [v for v in self.ps.value_stack if isinstance(v, Token) and v.type == "LBRACE"]

    def missing_brace(self) -> Diagnostic | None:
        """E011 at the innermost `{` still open; once per parse (one missing `}` leaves
        every enclosing block open too)."""
        if self.reported_braces:
            return None
        open_braces = self.open_braces()
        if not open_braces:
            return None
        v = open_braces[-1]
        self.reported_braces.add(v.start_pos)
        hint = "add '}' at the end of the `when` block"
        if len(open_braces) > 1:
            hint = f"{len(open_braces)} blocks are open at the end of the file; close each with '}}'"
        return Diagnostic("E011", "this '{' is never closed", Span(self.file, v.line, v.column), hint)
