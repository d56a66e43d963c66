"""The `steerc` command: parses arguments and calls the library, nothing more.

Each subcommand is one module in `steerc.commands` exposing `NAME`, `HELP`,
`add_arguments(parser)` and `run(args) -> int`. Exit codes: 0 ok, 1 diagnostics or
failed expectations, 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import signal
import sys
import traceback

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.report import FORMATS, emit, reporter

# The order here is the order of `steerc --help`.
COMMANDS = (
    "check",
    "explain",
    "compile",
    "calibrate",
    "verify",
    "trace",
    "catalogue",
    "fmt",
    "fetch",
    "export",
)


def _load_commands():
    return [importlib.import_module(f"steerc.commands.{name}") for name in COMMANDS]


class UsageError(SystemExit):
    """A bad command line, raised by `_Parser.error` where argparse would print and exit;
    `main` reports it. Exit status 2, like argparse's, for callers of the parser itself."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(2)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so `main` can report a usage
    error in the `--format` the command line asked for (subparsers inherit the class)."""

    def error(self, message: str):
        raise UsageError(self, message)


def requested_format(argv: list[str]) -> str:
    """The `--format` value on a command line argparse could not parse ("text" if none):
    `--format json`, `--format=json`, or an unambiguous prefix such as `--form json`."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        name, eq, value = a.partition("=")
        if len(name) >= len("--form") and "--format".startswith(name):
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if value in FORMATS:
                return value
    return "text"


def _usage_error(e: UsageError, fmt: str) -> int:
    """Exit 2: argparse's usage and message (text), or one E700 diagnostic in `fmt`."""
    if fmt == "text":
        e.parser.print_usage(sys.stderr)
        print(f"{e.parser.prog}: error: {e.message}", file=sys.stderr)
    else:
        emit([Diagnostic("E700", f"usage: {e.message}", None, f"see `{e.parser.prog} --help`")], fmt, sys.stdout)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="steerc", description="Declarative steering compiler for language models.")
    from steerc import __version__

    parser.add_argument("--version", action="version", version=f"steerc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (a CI timeout, a closed terminal): unwinds like Ctrl-C, so
    every `finally` and cleanup runs (a half-written output's temp dir is removed)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _terminate(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _terminate_like_interrupt():
    """While a command runs, SIGTERM and SIGHUP raise `Terminated` (Python's default for
    them is to die at once, leaving temp files); the previous handlers are restored after."""
    previous = {}
    for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _terminate)
        except ValueError:  # not the main thread (main() called from a worker): leave them
            break
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for stream in (sys.stdout, sys.stderr):
        # a file name that is not UTF-8 arrives with surrogate escapes: written as `\udcff`
        # (in a JSON string, the same escape) instead of failing the whole report
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        return _usage_error(e, requested_format(argv))
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    rep = reporter(args)  # renders diagnostics in the command's --format (default text)
    try:
        with _terminate_like_interrupt():
            rc = int(args._run(args) or 0)
    except DiagnosticError as e:
        rep.fail(e.diagnostics)
        rc = 1
    except Terminated as e:  # exit status as if killed by the signal (128 + its number)
        print(f"steerc: terminated ({signal.Signals(e.signum).name})", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("steerc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `steerc ... | head`: the reader left; stay quiet, like other tools
        _silence_stdout()
        return 1
    except Exception as e:  # backstop only: every known bad input has its own diagnostic
        print(f"steerc: internal error: {type(e).__name__}: {str(e)[:500]}", file=sys.stderr)
        print("this is a bug in steerc, not in your input: please report it with the command "
              "line (STEERC_TRACEBACK=1 prints the traceback)", file=sys.stderr)
        if os.environ.get("STEERC_TRACEBACK"):
            traceback.print_exc()
        return 1
    try:
        rep.close()
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 1
    return rc


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
