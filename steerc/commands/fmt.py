"""`steerc fmt [--check] [--diff] FILES...`: rewrite specs in the canonical layout.

The layout is `steerc.grammar.format_spec`'s. Before anything is written, the result is
re-parsed: it must give the same AST (spans aside) with the same comments, and formatting
it again must change nothing; otherwise the file is left alone and E099 is reported (a
formatter bug, never the user's). Directories are searched for `*.steer`; `-` formats
standard input to standard output.
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import sys
from dataclasses import dataclass

from steerc.commands import show
from steerc.compiler import ast
from steerc.diagnostics import Diagnostic, DiagnosticError, Span
from steerc.files import read
from steerc.files.write import write_atomic
from steerc.grammar import format_spec, parse, strip_spans
from steerc.grammar.parser import decode_spec, parse_file, read_spec
from steerc.report import add_format_argument, human_stream, reporter

NAME = "fmt"
HELP = "format specs in the canonical layout (--check: only report files that would change)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help=".steer files or directories (searched for *.steer); - for stdin -> stdout")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing the files that would be reformatted")
    p.add_argument("--diff", action="store_true", help="write nothing; print a unified diff per file")
    add_format_argument(p)


@dataclass(frozen=True)
class Formatted:
    """One file's outcome: its text before and after (after is None on diagnostics)."""

    path: str
    before: str
    after: str | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        return self.after is not None and self.after != self.before


def same_meaning(a: ast.Spec, b: ast.Spec) -> bool:
    """True when two specs have equal ASTs (spans stripped) and the same comment texts."""
    return (strip_spans(a.statements) == strip_spans(b.statements)
            and [c for _, c in a.comments] == [c for _, c in b.comments])


def format_text(text: str, file: str = "<string>") -> str:
    """Canonical text for steer source `text`; raises DiagnosticError on syntax errors and
    E099 when the formatter would change the spec's meaning or is not idempotent."""
    spec = parse(text.removeprefix("\ufeff"), file)
    return _checked(spec, file)


def _checked(spec: ast.Spec, file: str) -> str:
    out = format_spec(spec)
    problem = None
    try:
        again = parse(out, file)
    except DiagnosticError:
        again = None
        problem = "its output does not parse"
    if again is not None and not same_meaning(spec, again):
        problem = "it would change the spec's meaning or drop a comment"
    elif again is not None and format_spec(again) != out:
        problem = "formatting its own output changes it again"
    if problem:
        raise DiagnosticError([Diagnostic(
            "E099", f"steerc fmt left {file} unchanged: {problem} (a formatter bug)", Span(file, 0, 0),
            "please report it with this file attached")])
    return out


def format_file(path: str) -> Formatted:
    """Format one file in memory (nothing is written)."""
    try:  # parse_file: guarded read, and a file that is no spec is never quoted
        spec = parse_file(path)
        before = read_spec(path)
    except DiagnosticError as e:
        return Formatted(path, "", None, tuple(e.diagnostics))
    try:
        return Formatted(path, before, _checked(spec, path))
    except DiagnosticError as e:
        return Formatted(path, before, None, tuple(e.diagnostics))


def expand(paths: list[str]) -> list[str]:
    """Files as given, directories replaced by their `*.steer` files (sorted, recursive)."""
    out: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            # os.walk, not rglob: folders that vanish or refuse listing (/proc) are skipped;
            # symlinked folders are not followed (no loops)
            found = [os.path.join(d, f) for d, _, files in os.walk(p, onerror=lambda e: None)
                     for f in files if f.endswith(".steer")]
            out += sorted(f for f in found if os.path.isfile(f))
        else:
            out.append(p)
    return out


def _diff(f: Formatted) -> str:
    return "".join(difflib.unified_diff(f.before.splitlines(keepends=True), f.after.splitlines(keepends=True),
                                        fromfile=f"{f.path} (original)", tofile=f"{f.path} (formatted)"))


def _stdin_text() -> str:
    """stdin, read like a spec file: bounded (`fmt - < /dev/zero` stops at the limit), E018
    for invalid UTF-8 or a NUL. A text stream without bytes (tests) gets the same limit."""
    buf = getattr(sys.stdin, "buffer", None)
    if buf is not None:
        return decode_spec(read.read_stream(buf, read.SPEC), "<stdin>")
    text = sys.stdin.read(read.SPEC.max_bytes + 1)
    if len(text) > read.SPEC.max_bytes:
        read.read_stream(io.BytesIO(text.encode("utf-8", "surrogatepass")), read.SPEC)  # raises: too large
    return text


def run(args: argparse.Namespace) -> int:
    """0 when every file is (now) formatted; 1 on syntax errors or, with --check, when a
    file would change. The diff goes to stdout (stderr when stdout holds a json/sarif report)."""
    human = human_stream(args)
    diags: list[Diagnostic] = []
    if "-" in args.files:
        try:
            sys.stdout.write(format_text(_stdin_text(), "<stdin>"))
        except DiagnosticError as e:
            diags += e.diagnostics
    changed = unchanged = 0
    for path in (p for p in expand(args.files) if p != "-"):
        f = format_file(path)
        diags += f.diagnostics
        if f.after is None:
            continue
        if not f.changed:
            unchanged += 1
            continue
        changed += 1
        if args.diff:
            human.write(_diff(f))
        if args.check or args.diff:
            show(f"would reformat {path}", file=sys.stderr)
        else:
            try:  # replaced whole, keeping its permission bits; never through a symlink
                write_atomic(path, f.after, what="spec")
            except DiagnosticError as e:
                diags += e.diagnostics
                continue
            show(f"reformatted {path}", file=sys.stderr)
    if changed or unchanged:
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        show(f"{changed} file{'s' * (changed != 1)} {verb}, {unchanged} unchanged", file=sys.stderr)
    if diags:
        reporter(args).fail(diags)
        return 1
    return 1 if args.check and changed else 0
