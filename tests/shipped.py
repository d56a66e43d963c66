"""Helpers for files steerc ships inside checkpoints (they must run without steerc)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
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


# The same for a script run with `python -c` in the test's own environment, where steerc is
# installed: the import of steerc (or any of its modules) fails, so the script can only use
# transformers, torch and the checkpoint; one torch thread, transformers imported as `tf`.
BLOCK_STEERC = r'''
import importlib.abc, sys, torch
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "steerc" or name.startswith("steerc."):
            raise ImportError("steerc is not installed here")
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if p not in ("", ".")]
torch.set_num_threads(1)
import transformers as tf
'''


def run_without_steerc(tmp_path: Path, script: str, cases: list, **env: str) -> str:
    """Run `script` (starting with NO_STEERC) on `cases` (saved as argv[2]) in an isolated
    interpreter that cannot import steerc; asserts it exits 0 and prints `ok ` once per
    case; returns its stdout. `env`: extra environment variables."""
    import torch

    torch.save(cases, tmp_path / "cases.pt")
    (tmp_path / "check.py").write_text(script)
    proc = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "check.py"),
                           sysconfig.get_paths()["purelib"], str(tmp_path / "cases.pt")],
                          capture_output=True, text=True, env=dict(os.environ, **env), cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("ok ") == len(cases), proc.stdout
    return proc.stdout


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
