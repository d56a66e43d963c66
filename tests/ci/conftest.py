"""Shared helpers for the CI-integration tests (report formats, fmt, hooks, editors)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
SKIP_DIRS = {".venv", "node_modules", ".git", "build", ".hypothesis", ".pytest_cache"}


def repo_steer_files() -> list[Path]:
    """Every .steer file in the repository (tracked or not), outside venvs and build dirs."""
    return sorted(p for p in REPO.rglob("*.steer")
                  if not SKIP_DIRS.intersection(p.relative_to(REPO).parts))


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `steerc ARGS` in-process from `cwd`; returns (rc, stdout, stderr)."""
    from steerc.cli import main

    def run(args, cwd=REPO):
        monkeypatch.chdir(cwd)
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            rc = e.code
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
