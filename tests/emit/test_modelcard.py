"""The model card (README.md of a compiled checkpoint) tells the truth: Hub metadata a Hub
reads, the spec text, no absolute path of the build, which engines run the output (from
each target's `engines`, the one place those facts live), and `steerc verify --card`
results."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from steerc.cli import main
from steerc.targets import TARGETS
from steerc.compiler.ir import HubSource
from steerc.compiler.modelcard import TAGS, VERIFY_END, VERIFY_START, model_card, with_verify_results

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
pytestmark = pytest.mark.skipif(not (DEMO / "model" / "config.json").exists(), reason="demo absent")


def _spec(d: Path, body: str) -> Path:
    """A spec in `d` naming the demo by absolute paths (the worst case for leaking them)."""
    p = d / "s.steer"
    p.write_text(f'# steer\nmodel "{DEMO / "model"}"\nsae res2 = "{DEMO / "saes" / "blocks.2.hook_resid_post"}"\n'
                 f'catalogue "{DEMO / "catalogue.json"}"\n' + body, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{target: (spec, out)}: a weights output and a hooks output, from absolute-path specs."""
    res = {}
    for target, body in (("weights", 'amplify res2[143] by 20\n'),
                         ("hooks", 'suppress res2[1221]\nexpect "def f(self):" not mentions "self"\n')):
        d = tmp_path_factory.mktemp(target)
        spec, out = _spec(d, body), d / "build" / "out"
        assert main(["compile", str(spec), "-o", str(out)]) == 0
        assert json.loads((out / "steerc-manifest.json").read_text())["target"] == target
        res[target] = (spec, out)
    return res


def _absolute(path: str, text: str) -> bool:
    """`path` occurs in `text` as an absolute path (not as the tail of "../../work/...")."""
    return re.search(r"(?<![.\w/])" + re.escape(path), text) is not None


def _front_matter(card: str) -> dict:
    m = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert m, card[:200]
    return yaml.safe_load(m.group(1))


def _engine_rows(card: str) -> dict:
    section = card.split("## Where it runs", 1)[1].split("\n## ", 1)[0]
    rows = [ln.split(" | ") for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln]
    return {r[0][2:]: r[1] for r in rows[1:]}


@pytest.mark.parametrize("target", ["weights", "hooks"])
def test_front_matter_engines_and_spec_text(built, target):
    spec, out = built[target]
    card = (out / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(card)
    assert meta == {"library_name": "transformers", "tags": list(TAGS)}  # local base: no base_model
    # the engine table is ENGINES[target], and a hooks checkpoint runs in transformers only
    assert _engine_rows(card) == {e.engine: "yes" if e.runs else "**no**" for e in TARGETS[target].engines}
    runs = {e.engine for e in TARGETS[target].engines if e.runs}
    assert runs == ({"transformers"} if target == "hooks" else {"transformers", "vLLM", "llama.cpp", "TGI"})
    # the spec's text, its absolute paths shown relative to the checkpoint
    assert 'amplify res2[143] by 20' in card or 'suppress res2[1221]' in card
    assert '# steer\nmodel "../../../../' in card and 'sae res2 = "../../../../' in card


def test_no_output_file_holds_an_absolute_build_path(built):
    for spec, out in built.values():
        for f in out.rglob("*"):
            if f.is_file() and f.suffix in ("", ".md", ".json", ".lock", ".py", ".txt"):
                text = f.read_text(encoding="utf-8", errors="replace")
                for leak in (str(spec.parent), str(ROOT), str(DEMO)):
                    assert not _absolute(leak, text), (f, leak)


def test_base_model_is_the_hub_repo_when_the_spec_named_one(built):
    from steerc.compiler.load import load_program

    spec, out = built["weights"]
    manifest = json.loads((out / "steerc-manifest.json").read_text())
    program = load_program(spec)
    from steerc.compiler.plan import plan as make_plan
    from steerc.compiler.build_checkpoint import load_base

    config, _, adapter = load_base(DEMO / "model")
    p = make_plan(program, config, adapter, "auto")
    hub = dataclasses.replace(program, model="hf://org/tiny",
                              model_source=HubSource("org/tiny", "v1", "a" * 40))
    meta = _front_matter(model_card(hub, p, manifest))
    assert meta["base_model"] == "org/tiny" and "@" not in meta["base_model"]


def test_every_target_states_where_it_runs():
    from steerc.targets.engines import EngineSupport

    for name, target in TARGETS.items():
        assert target.engines and all(isinstance(e, EngineSupport) for e in target.engines), name
        assert any(e.runs for e in target.engines), name  # an output that runs nowhere is a bug


def test_verify_card_writes_the_results_into_the_card(built, tmp_path, capsys):
    spec, out = built["hooks"]
    before = (out / "README.md").read_text(encoding="utf-8")
    assert "Not verified yet" in before
    rc = main(["verify", str(out), "--card", "--max-windows", "2", "--max-new-tokens", "8"])
    card = (out / "README.md").read_text(encoding="utf-8")
    section = card.split(VERIFY_START, 1)[1].split(VERIFY_END, 1)[0]
    assert ("passed." if rc == 0 else "**failed**") in section
    assert "Expectations: " in section and 'expect "def f(self):" not mentions "self"' in section
    assert "KL(base" in section and not _absolute(str(DEMO), section)
    assert card.replace(section, "") == before.replace(before.split(VERIFY_START, 1)[1].split(VERIFY_END, 1)[0], "")
    # a card without the section (or none): E458 before any verify work
    capsys.readouterr()
    assert main(["verify", str(tmp_path), "--card"]) == 1
    assert "error[E458]" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("# hand-written\n")
    assert main(["verify", str(tmp_path), "--card"]) == 1
    err = capsys.readouterr().err
    assert "error[E458]" in err and "no steerc verification section" in err
    assert (tmp_path / "README.md").read_text() == "# hand-written\n"


def test_with_verify_results_replaces_only_the_section():
    class R:  # the fields verify_summary reads
        ok, features, expects, guard, prompt_tokens, prompts_source = True, (), (), False, 0, "x"
        neutral_source = "built-in neutral prose"
        kl = type("KL", (), {"n_tokens": 10, "mean": 0.5, "p95": 1.0, "max": 2.0})()

    card = f"# c\n\n{VERIFY_START}\nNot verified yet.\n{VERIFY_END}\n\n## Spec\n"
    once = with_verify_results(card, R(), "/ckpt")
    assert once.startswith("# c\n\n" + VERIFY_START) and once.endswith(VERIFY_END + "\n\n## Spec\n")
    assert "mean 0.5" in once and "Not verified" not in once
    assert with_verify_results(once, R(), "/ckpt") == once  # idempotent
    assert with_verify_results("# no section\n", R(), "/ckpt") is None
