"""Plan rules on hand-built Programs: targets, refusals (E410), fold conflicts, idempotent passes."""

from __future__ import annotations

import dataclasses

import pytest

from steerc.arch.registry import adapter_for
from steerc.compiler.ir import Condition, FeatureId, Intervention, Op, Program
from steerc.compiler.plan import PASSES, plan
from steerc.diagnostics import DiagnosticError, Span
from tests.emit.conftest import P1, interventions
from tests.tinymodels import make_tiny


@pytest.fixture(scope="module")
def configs():
    return {a: make_tiny(a)[1] for a in ("llama", "gemma2", "gpt2", "qwen3", "gemma3_text", "phi3",
                                         "olmo2", "gpt_neox", "qwen2_moe")}


def _prog(*ivs):
    return Program("s.steer", "m", (), None, tuple(ivs))


def _kinds(p):
    return [lo.kind for lo in p.lowerings]


def test_auto_picks_weights_only_when_everything_is_exact(configs):
    c = configs["llama"]
    assert plan(_prog(*interventions("add_ablate")), c, adapter_for(c)).target == "weights"
    p = plan(_prog(*interventions("hooks")), c, adapter_for(c))
    assert p.target == "hooks"
    assert _kinds(p)[-1] == "weights"  # steer r[9] at blocks.2 stays an exact bias edit


def test_weights_target_refuses_with_rule_span_and_hint(configs):
    c = configs["llama"]
    span = Span("s.steer", 4, 1, 8)
    iv = dataclasses.replace(interventions("hooks")[0], span=span)
    with pytest.raises(DiagnosticError) as ei:
        plan(_prog(iv), c, adapter_for(c), "weights")
    (d,) = ei.value.diagnostics
    assert d.code == "E410" and d.span == span
    assert "clamp r[3] to 2" in d.message and "activation" in d.message
    assert "--target hooks" in d.hint


@pytest.mark.parametrize("scenario,why", [
    ("add", "norm between each writer"), ("ablate", "norm between each writer")])
def test_gemma2_residual_edits_are_refused_under_weights(configs, scenario, why):
    c = configs["gemma2"]
    with pytest.raises(DiagnosticError) as ei:
        plan(_prog(*interventions(scenario)), c, adapter_for(c), "weights")
    assert all(d.code == "E410" and why in d.message for d in ei.value.diagnostics)
    p = plan(_prog(*interventions(scenario)), c, adapter_for(c), "weights", check=False)
    assert set(_kinds(p)) == {"refused"}


def test_documented_refusal_reasons(configs):
    c = configs["llama"]
    p = plan(_prog(*interventions("hooks")), c, adapter_for(c), "weights", check=False)
    reasons = {lo.intervention.origin: lo.reason for lo in p.lowerings if lo.kind == "refused"}
    assert "a_i(x)" in reasons["clamp r[3] to 2"]
    assert "condition" in reasons["when r[6] > 0.1 { steer r[5] by 3 }"]
    assert "position scope 'generated'" in reasons["steer r[8] by 3 on generated"]
    assert "local" in reasons["ablate r[7]"] and "everywhere" in reasons["ablate r[7]"]


def test_add_read_by_a_hook_at_the_same_point_becomes_a_hook(configs):
    c = configs["llama"]
    add = Intervention(Op.ADD, FeatureId("r", 1), 2.0, ("blocks.2.hook_resid_pre",))
    read = Intervention(Op.SCALE, FeatureId("r", 2), 0.5, (P1,))  # resid_post 1 == resid_pre 2
    p = plan(_prog(add, read), c, adapter_for(c))
    assert _kinds(p) == ["hook", "hook"] and "reads" in p.lowerings[0].reason
    mlp = Intervention(Op.SET, FeatureId("m", 2), 0.0, ("blocks.2.hook_mlp_out",))
    p = plan(_prog(add, mlp), c, adapter_for(c))  # bias of layer 1 != mlp_out of layer 2
    assert _kinds(p) == ["weights", "hook"]


def test_everywhere_goes_to_hooks_with_any_hook(configs):
    c = configs["gpt2"]
    ivs = interventions("add_ablate") + (Intervention(
        Op.ADD, FeatureId("r", 1), 1.0, (P1,), condition=Condition(FeatureId("r", 2), P1, 0.0)),)
    p = plan(_prog(*ivs), c, adapter_for(c))
    assert set(_kinds(p)) == {"hook"}


def test_gpt2_resid_pre0_add_folds_into_untied_wpe(configs):
    c = configs["gpt2"]
    iv = Intervention(Op.ADD, FeatureId("r", 1), 1.0, ("blocks.0.hook_resid_pre",))
    p = plan(_prog(iv), c, adapter_for(c))
    assert p.lowerings[0].tensors == ("transformer.wpe.weight",) and not p.untie


@pytest.mark.parametrize("scenario", ["add", "ablate", "add_ablate", "hooks"])
@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_passes_are_idempotent(configs, arch, scenario):
    c = configs[arch]
    prog = _prog(*interventions(scenario))
    p = plan(prog, c, adapter_for(c), check=False)
    for pass_ in PASSES:
        assert pass_(p, prog, c, adapter_for(c)) == p


def test_unknown_hook_point_is_a_diagnostic_of_the_validation_pass(tmp_path):
    """Hook names are checked before planning (the pass check, explain and compile share),
    at the rule's span."""
    from steerc.compiler.modeldesc import ModelInfo
    from steerc.compiler.validate import validate

    span = Span("s.steer", 3, 1, 5)
    iv = Intervention(Op.ADD, FeatureId("r", 1), 1.0, ("blocks.7.hook_resid_post",), span=span)
    info = ModelInfo(tmp_path, "llama", 32, 3, 3)
    diags = validate(_prog(iv), info)
    assert [(d.code, d.span) for d in diags] == [("E492", span)]


# What `--target weights` refuses on each newer family, and the reason it gives (the
# exactness suite in test_equivalence.py proves the accepted ones equal the reference).
@pytest.mark.parametrize("arch,scenario,why", [
    ("qwen3", "add", "no config flag creates one"),
    ("phi3", "add", "no bias and no config flag"),
    ("qwen2_moe", "add", "no expert, shared expert or dense MLP has a bias"),
    ("olmo2", "add", "norm between each writer"),
    ("olmo2", "ablate", "norm between each writer"),
    ("gemma3_text", "add", "norm between each writer"),
    ("gemma3_text", "ablate", "norm between each writer"),
])
def test_newer_families_refuse_inexact_weight_edits(configs, arch, scenario, why):
    c = configs[arch]
    p = plan(_prog(*interventions(scenario)), c, adapter_for(c), "weights", check=False)
    refused = [lo for lo in p.lowerings if lo.kind == "refused"]
    assert refused and all(why in lo.reason for lo in refused)
    assert all(d.code == "E410" for d in p.diagnostics)


@pytest.mark.parametrize("arch", ["qwen3", "phi3", "qwen2_moe", "olmo2", "gpt_neox"])
def test_resid_pre0_add_folds_into_an_unscaled_embedding(configs, arch):
    c = configs[arch]
    p = plan(_prog(*interventions("add_embed")), c, adapter_for(c), "weights")
    emb = "gpt_neox.embed_in.weight" if arch == "gpt_neox" else "model.embed_tokens.weight"
    assert _kinds(p) == ["weights"] and p.lowerings[0].tensors == (emb,)


def test_everywhere_ablation_edits_every_expert_and_the_shared_expert(configs):
    c = configs["qwen2_moe"]
    p = plan(_prog(*interventions("ablate")[:1]), c, adapter_for(c), "weights")
    tensors = set(p.lowerings[0].tensors)
    for L in range(c.num_hidden_layers):
        if L in c.mlp_only_layers:
            assert f"model.layers.{L}.mlp.down_proj.weight" in tensors
            continue
        assert {f"model.layers.{L}.mlp.experts.{e}.down_proj.weight"
                for e in range(c.num_experts)} <= tensors
        assert f"model.layers.{L}.mlp.shared_expert.down_proj.weight" in tensors
    assert not any("gate" in t or "up_proj" in t for t in tensors)  # readers stay as they are


@pytest.mark.parametrize("n", [1, 2, 6, 40])
def test_weights_target_refuses_a_feature_set_rule_once(configs, n):
    """`suppress features matching "x" limit n`: n interventions, one source line -> one E410
    naming the count (was n identical errors); the plan still marks each feature refused."""
    c = configs["llama"]
    span = Span("s.steer", 4, 1, 30)
    rule = 'suppress features matching "x" limit 6'
    ivs = [Intervention(Op.SET, FeatureId("r", i), 0.0, (P1,), span=span, origin=rule) for i in range(n)]
    other = dataclasses.replace(interventions("hooks")[0], span=Span("s.steer", 5, 1, 8))
    p = plan(_prog(*ivs, other), c, adapter_for(c), "weights", check=False)
    assert _kinds(p) == ["refused"] * (n + 1)
    assert [d.span for d in p.diagnostics] == [span, other.span]
    first = p.diagnostics[0]
    assert first.code == "E410" and rule in first.message
    assert (f"({n} features)" in first.message) == (n > 1)
    again = PASSES[-1](p, _prog(*ivs, other), c, adapter_for(c))  # idempotent: no second E410
    assert again.diagnostics == p.diagnostics
