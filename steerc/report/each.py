"""`python -m steerc.report.each COMMAND [OPTIONS] FILE...`: run a one-spec command per file.

pre-commit (and shell globs) pass many files at once, while `steerc check` takes one
spec; this runs `steerc COMMAND [OPTIONS] FILE` for each file in turn and exits with the
worst exit code (0 ok, 1 diagnostics, 2 usage). Options are everything before the first
argument that names an existing file, or everything before `--` when one is given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from steerc.cli import main as steerc_main


def split(argv: list[str]) -> tuple[str, list[str], list[str]]:
    """(command, options, files) from `COMMAND [OPTIONS] [--] FILE...`."""
    if not argv:
        raise SystemExit("usage: python -m steerc.report.each COMMAND [OPTIONS] [--] FILE...")
    command, rest = argv[0], argv[1:]
    if "--" in rest:
        i = rest.index("--")
        return command, rest[:i], rest[i + 1:]
    i = next((k for k, a in enumerate(rest) if not a.startswith("-") and os.path.isfile(Path(a))), len(rest))
    return command, rest[:i], rest[i:]


def main(argv: list[str] | None = None) -> int:
    """Run the command once per file; the worst exit code wins."""
    command, options, files = split(list(sys.argv[1:] if argv is None else argv))
    worst = 0
    for f in files:
        try:
            rc = steerc_main([command, *options, f])
        except SystemExit as e:  # argparse usage errors
            rc = e.code if isinstance(e.code, int) else 2
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
