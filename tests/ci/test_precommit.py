"""The hooks in .pre-commit-hooks.yaml, run by the real `pre-commit` in a throwaway repo.

Consumers use the hooks with `language: python` (pre-commit pip-installs steerc into its
own venv). That install needs the network and a torch wheel, so here the same hook
definitions (id, entry, files, ...) run as `repo: local` hooks with `language: system`
against this venv's steerc: only the language differs from what consumers run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, git

FIX = REPO / "tests" / "fixtures"
GOOD = f'''model "{FIX / "model"}"
sae res2 = "{FIX / "sae_res"}"
catalogue "{FIX / "catalogue.json"}"

steer res2["greeting"] by 2
'''


def hooks() -> list[dict]:
    return yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())


def test_hook_definitions():
    by_id = {h["id"]: h for h in hooks()}
    assert set(by_id) == {"steerc-fmt", "steerc-check"}
    for h in by_id.values():
        assert h["files"] == r"\.steer$" and h["language"] == "python"
    assert by_id["steerc-fmt"]["entry"] == "steerc fmt --check"
    assert by_id["steerc-check"]["entry"].endswith("steerc.report.each check")


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pytest.importorskip("pre_commit", reason="pre-commit (test extra) is not installed")
    r = tmp_path / "specs-repo"
    r.mkdir()
    git(r, "init", "-q")
    git(r, "config", "user.email", "ci@example.invalid")
    git(r, "config", "user.name", "ci")
    local = [{**h, "language": "system"} for h in hooks()]
    (r / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}))
    (r / "good.steer").write_text(GOOD)
    (r / "notes.txt").write_text("not a spec\n")
    return r


def pre_commit(r: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    git(r, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
                          cwd=r, env=env, capture_output=True, text=True, timeout=300)


def test_hooks_pass_on_formatted_valid_specs_and_fail_on_others(repo, tmp_path):
    ok = pre_commit(repo, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "steerc fmt --check" in ok.stdout and "Passed" in ok.stdout

    (repo / "messy.steer").write_text(GOOD.replace("by 2", "by   2.0"))
    (repo / "typo.steer").write_text(GOOD.replace("res2[", "res3["))
    bad = pre_commit(repo, tmp_path)
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out
    assert "would reformat messy.steer" in out and "would reformat good.steer" not in out
    assert "typo.steer:5:7: error[E201]: unknown SAE alias 'res3'" in out
    assert out.count("Failed") == 2
    assert "notes.txt" not in out  # files: \.steer$
