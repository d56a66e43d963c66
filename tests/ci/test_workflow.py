"""examples/ci/steerc.yml parses, and every steerc command line in it exists in the CLI."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest
import yaml

from steerc.cli import COMMANDS, build_parser

from .conftest import REPO

WORKFLOW = REPO / "examples" / "ci" / "steerc.yml"
SHELL_OPS = {">", ">>", "|", "||", "&&", ";", "2>", "&"}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return workflow()["jobs"]["steer"]["steps"]


def steerc_invocations(script: str) -> list[list[str]]:
    """The argument lists of every `steerc ...` / `python -m steerc ...` in a run: script."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, w in enumerate(words):
            if w == "steerc" and (i == 0 or words[i - 1] in SHELL_OPS or words[i - 1] == "-m"):
                args = []
                for a in words[i + 1:]:
                    if a in SHELL_OPS:
                        break
                    args.append(a)
                out.append(args)
    return out


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_workflow_parses_and_has_the_ci_steps():
    wf = workflow()
    assert wf["name"] == "steerc" and (True in wf or "on" in wf)  # YAML 1.1 reads `on:` as True
    assert wf["permissions"]["security-events"] == "write"
    uses = [s.get("uses", "") for s in steps()]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    upload = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "${{ env.OUT }}" in upload["with"]["path"]
    runs = "\n".join(s.get("run", "") for s in steps())
    assert "pip install" in runs
    calls = [c for s in steps() for c in steerc_invocations(s.get("run", ""))]
    names = [c[0] for c in calls]
    for needed in ("fmt", "check", "compile", "verify"):
        assert needed in names
    check = next(c for c in calls if c[0] == "check" and "github" in c)
    assert "--locked" in check and check[check.index("--format") + 1] == "github"
    sarif = next(s for s in steps() if "--format sarif" in s.get("run", ""))
    assert sarif["if"] == "always()" and "> steerc.sarif" in sarif["run"]


def test_every_steerc_command_and_option_in_the_workflow_exists():
    subs = subparsers()
    checked = 0
    for s in steps():
        for args in steerc_invocations(s.get("run", "")):
            cmd = args[0]
            assert cmd in COMMANDS, f"unknown steerc command {cmd!r} in: {s['run']}"
            if cmd not in subs:  # a command whose module is not in this checkout yet
                continue
            opts = {o for a in subs[cmd]._actions for o in a.option_strings}
            for a in args[1:]:
                if a.startswith("-") and a != "-":
                    assert a.split("=", 1)[0] in opts, f"steerc {cmd} has no option {a!r}"
            # and the whole line parses (environment variables stand in for paths)
            subs[cmd].parse_args([a.replace("$", "") for a in args[1:]])
            checked += 1
    assert checked >= 4


def test_the_checker_catches_a_bad_option(tmp_path):
    subs = subparsers()
    args = steerc_invocations('steerc check "$SPEC" --lokced --format github')[0]
    opts = {o for a in subs["check"]._actions for o in a.option_strings}
    assert "--lokced" not in opts and args[1:] == ["$SPEC", "--lokced", "--format", "github"]
    with pytest.raises(SystemExit):
        subs["check"].parse_args(args[1:])
