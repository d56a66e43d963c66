"""Helpers for files steerc ships inside checkpoints (they must run without steerc)."""

from __future__ import annotations

import ast
from pathlib import Path

# The first lines of a script run in an interpreter that must not see steerc (`python -S`,
# site-packages passed as argv[1]): it fails at once if steerc is importable there.
NO_STEERC = r'''
import sys
sys.path.append(sys.argv[1])          # site-packages only: no .pth files, so no editable steerc
try:
    import steerc
    raise SystemExit("steerc is importable in the standalone interpreter")
except ImportError:
    pass
'''


def top_level_imports(path: str | Path) -> set[str]:
    """Root package names a Python file imports; asserts it has no relative import
    (a shipped file is copied alone, so `from .x import y` would break downstream)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in {path}: it is shipped alone"
            roots.add(node.module.split(".")[0])
    return roots
