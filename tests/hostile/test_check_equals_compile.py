"""`steerc check` is the contract CI relies on: for every spec of a corpus (each golden
semantic case, good and bad, plus specs over real tiny models of every family that do not
fit their SAE or their hook points), check's verdict (exit code and error codes) equals
compile's. Before the validation pass, check accepted specs compile refused with E309,
E490-E497, and a TopK `k < 0` compiled and crashed on the first forward pass."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.hostile.world import FIX, run_cli
from tests.tinymodels import ARCHS, random_sae_dir, save_tiny

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "semantic"
# syntax-free specs whose failures are all about resolve or the validation pass
CASES = sorted(p.name for p in GOLDEN.glob("*.steer"))


def verdict(argv: list[str]) -> tuple[int, list[str]]:
    rc, out, err = run_cli(argv)
    return rc, sorted(set(re.findall(r"error\[(E\d{3})\]", err + out)))


def same_verdict(spec: Path, out: Path) -> tuple[int, list[str]]:
    check = verdict(["check", str(spec)])
    compiled = verdict(["compile", str(spec), "-o", str(out)])
    assert check == compiled, f"check {check} vs compile {compiled} for {spec.name}"
    assert out.exists() == (check[0] == 0)  # a refused compile writes nothing
    return check


@pytest.mark.parametrize("name", CASES)
def test_golden_cases(name, tmp_path, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    rc, codes = same_verdict(Path(name), tmp_path / "out")
    m = re.match(r"e(\d{3})_", name)
    if m:
        assert rc == 1 and f"E{m.group(1)}" in codes


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {a: save_tiny(a, root / a, tokenizer=False) and root / a for a in ARCHS}


def _spec(d: Path, model: Path, sae: Path, body: str) -> Path:
    p = d / "s.steer"
    p.write_text(f'model "{model}"\nsae s = "{sae}"\n\n{body}\n', encoding="utf-8")
    return p


# (case, SAE d_in, SAE hook, architecture, rule, config.json edit, expected code or None)
FAMILY_CASES = [
    ("fits", 32, "blocks.1.hook_resid_post", "jumprelu", "steer s[1] by 2\nsuppress s[2]", None, None),
    ("sae wider than the model", 48, "blocks.1.hook_resid_post", "jumprelu", "steer s[1] by 2", None, "E309"),
    ("mlp_out sae narrower", 16, "blocks.0.hook_mlp_out", "standard", "suppress s[1]", None, "E309"),
    ("topk k = -3", 32, "blocks.1.hook_resid_post", "topk", "suppress s[1]", None, "E303"),
    ("hook_pos_embed", 32, "hook_pos_embed", "standard", "steer s[1] by 2", None, "E491?"),
    ("config claims 5 layers", 32, "blocks.1.hook_resid_post", "jumprelu", "steer s[1] by 2",
     {"layers": 5}, "E241"),
    ("unsupported model_type", 32, "blocks.1.hook_resid_post", "jumprelu", "steer s[1] by 2",
     {"model_type": "mamba"}, "E490"),
    ("mixed ablation scopes", 32, "blocks.1.hook_resid_post", "jumprelu",
     "ablate s[1] on prompt\nablate s[2]", None, "E496"),
]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case,d_in,hook,sae_arch,body,edit,code", FAMILY_CASES,
                         ids=[c[0] for c in FAMILY_CASES])
def test_families(models, tmp_path, arch, case, d_in, hook, sae_arch, body, edit, code):
    import json

    model = models[arch]
    if edit:
        model = shutil.copytree(model, tmp_path / "model")
        cfg = json.loads((model / "config.json").read_text())
        if "layers" in edit:
            cfg["n_layer" if arch == "gpt2" else "num_hidden_layers"] = edit["layers"]
        if "model_type" in edit:
            cfg["model_type"] = edit["model_type"]
        (model / "config.json").write_text(json.dumps(cfg))
    sae = random_sae_dir(d_in, 16, hook, tmp_path / "sae", sae_arch, k=2 if sae_arch == "topk" else None)
    if code == "E303":
        c = json.loads((sae / "cfg.json").read_text())
        c["k"] = -3
        (sae / "cfg.json").write_text(json.dumps(c))
    rc, codes = same_verdict(_spec(tmp_path, model, sae, body), tmp_path / "out")
    if code is None:
        assert (rc, codes) == (0, [])
    elif code == "E491?":  # GPT-2 has learned position embeddings: there it is a hook point
        assert (rc, codes) == ((0, []) if arch == "gpt2" else (1, ["E491"]))
    else:
        assert (rc, codes) == (1, [code])
