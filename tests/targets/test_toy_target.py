"""A new output target is one module: this file defines one (a JSON "control vector" of the
spec's additive rules), registers it, and compiles, explains and refuses through the public
API with no other change to steerc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import steerc
from steerc.checkpoint.output import TensorOutput
from steerc.files.write import write_new
from steerc.saes import load_sae
from steerc.targets import TARGETS, Artifacts, Job, Refusal
from steerc.targets.engines import EngineSupport
from tests.tinymodels import save_tiny

FIX = Path(__file__).resolve().parents[1] / "fixtures"


class ToyTarget:
    """Unconditional adds at residual points, as one JSON file of vectors per hook point."""

    name = "toy"
    summary = "additive rules as a JSON file of residual vectors"
    expresses = "a toy vector"
    runs_hooks = False
    engines = (EngineSupport("a toy runner", True, "reads toy.json", "this test"),)

    def refusal(self, lowering) -> Refusal | None:
        if lowering.kind != "weights" or lowering.intervention.op.value != "add":
            return Refusal("E410", "only unconditional adds are vectors", "use --target hooks")
        return None

    def program_refusals(self, program) -> list:
        return []

    def emit(self, job: Job, out: Path) -> Artifacts:
        vectors: dict[str, list[float]] = {}
        for lo in job.plan.weight_edits:
            iv = lo.intervention
            v = iv.value * job.directions(iv.feature)
            for p in iv.points:
                old = torch.tensor(vectors.get(p, [0.0] * v.numel()))
                vectors[p] = (old + v).tolist()
        write_new(out / "toy.json", json.dumps(vectors, sort_keys=True))
        records = [{"tensor": p, "ops": [{"op": "add"}]} for p in sorted(vectors)]
        return Artifacts(None, TensorOutput(), records)


@pytest.fixture()
def toy(monkeypatch):
    monkeypatch.setitem(TARGETS, "toy", ToyTarget())


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    save_tiny("llama", d / "model", hidden_size=16, intermediate_size=32, head_dim=8)
    head = f'model "{d / "model"}"\nsae res2 = "{FIX / "sae_res"}"\ncatalogue "{FIX / "catalogue.json"}"\n\n'
    (d / "add.steer").write_text(head + 'steer res2["greeting"] by 2\n')
    (d / "mixed.steer").write_text(head + 'steer res2["greeting"] by 2\nclamp res2["greeting"] to 1\n')
    return d


def test_a_registered_target_compiles_through_the_api(toy, d, tmp_path):
    built = steerc.compile(d / "add.steer", tmp_path / "out", target="toy")
    assert built.target == "toy" and not built.trust_remote_code
    got = json.loads((tmp_path / "out" / "toy.json").read_text())
    sae = load_sae(FIX / "sae_res")
    [(point, vec)] = got.items()
    feature = steerc.explain(d / "add.steer").plan.lowerings[0].intervention.feature
    want = 2 * sae.decoder_rows([feature.index])[0].float()
    assert point == sae.cfg.hook_name
    assert torch.allclose(torch.tensor(vec), want)
    manifest = json.loads((tmp_path / "out" / "steerc-manifest.json").read_text())
    assert manifest["target"] == "toy"
    assert not (tmp_path / "out" / "config.json").exists()  # not a checkpoint: no side files
    assert "a toy runner" in (tmp_path / "out" / "README.md").read_text()  # the card's engine table


def test_the_target_refuses_what_it_cannot_express_at_the_rule(toy, d, tmp_path):
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.compile(d / "mixed.steer", tmp_path / "out", target="toy")
    [diag] = e.value.diagnostics
    assert diag.code == "E410" and "cannot be lowered to a toy vector" in diag.message
    assert diag.span is not None and diag.span.line == 6
    assert not (tmp_path / "out").exists()
    explained = steerc.explain(d / "mixed.steer", target="toy")
    assert [lo.kind for lo in explained.plan.lowerings] == ["weights", "refused"]


def test_unknown_targets_are_refused():
    with pytest.raises(ValueError, match="unknown target 'toy'"):
        steerc.explain(FIX / "nothing.steer", target="toy")
