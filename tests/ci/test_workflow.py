"""examples/ci/steerc.yml parses, and every steerc command line in it exists in the CLI."""

from __future__ import annotations

import argparse
import re
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


def pip_installs(script: str) -> list[list[str]]:
    """The arguments after `pip install` in a run: script (options and their values included)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i in range(len(words) - 1):
            if words[i] == "pip" and words[i + 1] == "install":
                out.append(words[i + 2:])
    return out


def requirements(args: list[str]) -> list[str]:
    """The requirement / path arguments of one `pip install` (options and their values dropped)."""
    takes_value = {"--index-url", "-i", "--extra-index-url", "-r", "--requirement", "-c", "--constraint",
                   "-f", "--find-links"}
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def test_workflow_installs_steerc_from_the_checkout_and_pins_torch_like_the_project():
    """No `steerc==X` or `steerc @ git+URL` (no such release or repository exists to install
    from): steerc comes from the checked-out repository, torch at the project's pin."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {d.split(";")[0].strip().replace(" ", "") for d in project["dependencies"]}
    reqs = [r for s in steps() for args in pip_installs(s.get("run", "")) for r in requirements(args)]
    assert reqs, "the workflow installs nothing"
    local = []
    for r in reqs:
        if r.startswith((".", "/")) or "/" in r.split("@")[0]:
            local.append(r)
            assert (REPO / r).exists(), f"pip install {r}: no such path in the repository"
            continue
        name = re.split(r"[\s<>=!~\[@;]", r, maxsplit=1)[0].lower()
        assert name != "steerc", f"pip install {r!r}: steerc is installed from the checkout, not a registry"
        assert name == "pip" or r.replace(" ", "") in pins, f"pip install {r!r} is not pinned as in pyproject.toml"
    assert any((REPO / r / "pyproject.toml").is_file() and
               tomllib.loads((REPO / r / "pyproject.toml").read_text())["project"]["name"] == "steerc"
               for r in local), "steerc itself is never installed"
    torch = next(r for r in reqs if r.startswith("torch"))
    install = next(args for s in steps() for args in pip_installs(s.get("run", "")) if torch in args)
    assert "download.pytorch.org/whl/cpu" in " ".join(install)  # a CPU build, not GBs of CUDA


def test_every_path_the_workflow_names_exists_and_the_spec_checks_locked(run_cli):
    wf = workflow()
    spec = wf["env"]["SPEC"]
    assert (REPO / spec).is_file() and (REPO / f"{spec}.lock").is_file()
    for args in (c for s in steps() for c in steerc_invocations(s.get("run", ""))):
        if args[0] == "fmt":
            assert all((REPO / a).exists() for a in args[1:] if not a.startswith("-") and a != "github")
    on = wf.get("on", wf.get(True))
    for pattern in on["pull_request"]["paths"]:
        if pattern.startswith(".github/"):  # where the copy of this file goes, not where it is
            continue
        assert any(p for p in REPO.glob(pattern) if ".venv" not in p.parts), f"{pattern} matches nothing"
    rc, out, err = run_cli(["check", spec, "--locked", "--format", "github"])
    assert rc == 0, out + err  # the model, SAE, catalogue and lock it names all exist and agree
