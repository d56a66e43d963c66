"""Per-invocation reporting: commands hand diagnostics over, the CLI writes one report.

`text` keeps today's behaviour exactly: warnings are printed to stderr as they come, and a
fatal `DiagnosticError` is rendered with its summary. The machine formats are buffered
and written once, at the end, to stdout, so `steerc check --format sarif > out.sarif`
always holds exactly one document (an empty one when all is well); the commands' own
human lines then go to stderr (`human_stream`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence, TextIO

from steerc.diagnostics import Diagnostic, render
from steerc.report.formats import render_github, render_json, render_text
from steerc.report.sarif import render_sarif

FORMATS = ("text", "json", "sarif", "github")
MACHINE = ("json", "sarif")  # formats whose stdout is one document: human lines go to stderr
_RENDERERS: dict[str, Callable[..., str]] = {"text": render_text, "json": render_json, "github": render_github}


def render_report(diags: Sequence[Diagnostic], fmt: str, cwd: str | None = None,
                  fallback_file: str | None = None) -> str:
    """The whole report for `diags` in format `fmt` (one of FORMATS)."""
    if fmt == "sarif":
        return render_sarif(diags, cwd, fallback_file)
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](diags, cwd)


def emit(diags: Sequence[Diagnostic], fmt: str = "text", stream: TextIO | None = None,
         fallback_file: str | None = None) -> None:
    """Write the report for `diags` to `stream` (default: stderr for text, stdout otherwise)."""
    if stream is None:
        stream = sys.stderr if fmt == "text" else sys.stdout
    stream.write(render_report(diags, fmt, fallback_file=fallback_file))
    stream.flush()


@dataclass
class Reporter:
    """Collects one command's diagnostics and writes them in `fmt`."""

    fmt: str = "text"
    fallback_file: str | None = None  # the spec on the command line (SARIF needs a location)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    closed: bool = False

    def warn(self, diags: Sequence[Diagnostic]) -> None:
        """Report non-fatal diagnostics (warnings) now (text) or at `close` (other formats)."""
        if self.fmt == "text":
            for d in diags:
                print(render(d), file=sys.stderr)
        else:
            self.diagnostics.extend(diags)

    def fail(self, diags: Sequence[Diagnostic]) -> None:
        """Report the diagnostics of a `DiagnosticError` (the command stops)."""
        if self.fmt == "text":
            emit(diags, "text", sys.stderr)
            self.closed = True
        else:
            self.diagnostics.extend(diags)

    def close(self) -> None:
        """Write the buffered report (machine formats: always exactly one)."""
        if self.closed:
            return
        self.closed = True
        if self.fmt != "text":
            emit(self.diagnostics, self.fmt, sys.stdout, self.fallback_file)


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--format text|json|sarif|github` to a subcommand's parser."""
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="how to report diagnostics: text (default, for people), json "
                             "(specs/schemas/diagnostics.schema.json), sarif (SARIF 2.1.0, for code "
                             "scanning) or github (workflow-command annotations); see docs/ci.md")


def reporter(args: argparse.Namespace) -> Reporter:
    """The Reporter of this invocation (created on first use; `--format` default text)."""
    rep = getattr(args, "_reporter", None)
    if rep is None:
        spec = getattr(args, "spec", None)
        rep = Reporter(getattr(args, "format", None) or "text", spec if isinstance(spec, str) else None)
        args._reporter = rep
    return rep


def warn(args: argparse.Namespace, diags: Sequence[Diagnostic]) -> None:
    """Report warnings for this invocation in its `--format` (commands call this)."""
    reporter(args).warn(diags)


def human_stream(args: argparse.Namespace) -> TextIO:
    """Where a command prints its human summary: stdout, or stderr when stdout holds a
    json/sarif document."""
    return sys.stderr if getattr(args, "format", "text") in MACHINE else sys.stdout
