"""Named directions compile exactly, on every family: the compiled checkpoint's logits equal
an independent reference written here from the semantics (forward hooks on the blocks, no
steerc code), for the weight-edit rules (`steer`, `ablate ... everywhere`) and the hook rules
(`clamp`, `scale`, `suppress`, `when`), and the checkpoints load without steerc."""

from __future__ import annotations


import pytest
import torch
import transformers as tf
from safetensors.numpy import save_file

from steerc.compiler.build_checkpoint import compile_program
from steerc.compiler.load import load_program
from tests.directions.conftest import vectors
from tests.emit.conftest import FAMILIES, WEIGHTS
from tests.emit.test_standalone import SCRIPT
from tests.shipped import run_without_steerc
from tests.tinymodels import HIDDEN

TOL = 1e-4
CASES = [f[0] for f in FAMILIES]
V = vectors(4, HIDDEN, seed=3)

WEIGHT_SPEC = """
direction a = file "a.safetensors" at layer 0
direction b = file "b.safetensors" at layer 1
steer a by 2.5
ablate b everywhere
"""
HOOK_SPEC = """
direction a = file "a.safetensors" at layer 0
direction b = file "b.safetensors" at layer 1
direction c = file "c.safetensors" at layer 2
direction d = file "d.safetensors" at layer 2
scale a by 0.25
clamp b to 0.5
when c > 0.1 { steer d by 2 }
"""


def _blocks(model):
    inner = getattr(model, "transformer", None) or getattr(model, "gpt_neox", None) or model.model
    return inner.h if hasattr(inner, "h") else inner.layers


def _coef(x, v):
    return (x @ v) / (v @ v)


def _reference_hooks(model, scenario: str):
    """Forward hooks applying the scenario's semantics in float64 (returns the handles)."""
    v = [torch.from_numpy(x).double() for x in V]
    blocks = _blocks(model)

    def at(layer, fn):
        return blocks[layer].register_forward_hook(_post(fn))

    u = v[1] / v[1].norm()

    def proj(x):
        return x - (x @ u)[..., None] * u

    if scenario == "weights":  # every residual write projected, the steer's own delta too
        hs = [at(0, lambda x: proj(x + 2.5 * v[0]))]
        hs += [m.register_forward_hook(_post(proj)) for m in _writers(model)]
        hs.append(blocks[0].register_forward_pre_hook(_pre(proj), with_kwargs=True))  # embeddings
        return hs
    return [at(0, lambda x: x + (0.25 - 1) * _coef(x, v[0])[..., None] * v[0]),
            at(1, lambda x: x + (0.5 - _coef(x, v[1]))[..., None] * v[1]),
            at(2, lambda x: x + 2 * (_coef(x, v[2]) > 0.1)[..., None].double() * v[3])]


# The modules whose output is added to the residual stream, by model type (post-norm families
# add their post-norm's output), read from the transformers modelling files.
WRITERS = {"gpt2": ("attn", "mlp"), "gpt_neox": ("attention", "mlp"),
           "gemma2": ("post_attention_layernorm", "post_feedforward_layernorm"),
           "gemma3_text": ("post_attention_layernorm", "post_feedforward_layernorm"),
           "olmo2": ("post_attention_layernorm", "post_feedforward_layernorm")}
DEFAULT_WRITERS = ("self_attn", "mlp")


def _writers(model):
    names = WRITERS.get(model.config.model_type, DEFAULT_WRITERS)
    return [getattr(b, n) for b in _blocks(model) for n in names]


def _post(fn):
    def post(module, args, output):
        x = output[0] if isinstance(output, tuple) else output
        y = fn(x.double()).to(x.dtype)
        return (y,) + tuple(output[1:]) if isinstance(output, tuple) else y
    return post


def _pre(fn):
    def pre(module, args, kwargs):
        if args:
            return (fn(args[0].double()).to(args[0].dtype),) + args[1:], kwargs
        kwargs = dict(kwargs, hidden_states=fn(kwargs["hidden_states"].double()).to(kwargs["hidden_states"].dtype))
        return args, kwargs
    return pre


def _compile(bases, tmp_path, case: str, scenario: str):
    d, model = bases.base(case)
    for name, x in zip("abcd", V):
        save_file({"v": x}, str(tmp_path / f"{name}.safetensors"))
    spec = tmp_path / f"{scenario}.steer"
    spec.write_text(f'model "{d}"\n' + (WEIGHT_SPEC if scenario == "weights" else HOOK_SPEC))
    program = load_program(spec)
    out = tmp_path / f"out-{case}-{scenario}"
    res = compile_program(program, out)
    return out, res, model


@pytest.mark.parametrize("scenario", ["weights", "hooks"])
@pytest.mark.parametrize("case", CASES)
def test_direction_equals_reference(bases, tmp_path, case, scenario):
    out, res, model = _compile(bases, tmp_path, case, scenario)
    want = "weights" if scenario == "weights" and {"add", "ablate"} <= WEIGHTS[case] else "hooks"
    assert res.plan.target == want, [(lo.kind, lo.reason) for lo in res.plan.lowerings]
    compiled = tf.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=want == "hooks").eval()
    ids = torch.randint(4, 100, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = compiled(ids).logits
        handles = _reference_hooks(model, scenario)
        try:
            ref = model(ids).logits
        finally:
            for h in handles:
                h.remove()
        plain = model(ids).logits
    assert (got - ref).abs().max().item() <= TOL
    assert (got - plain).abs().max().item() > 1e-2  # the steering is not a no-op here


def test_direction_checkpoints_load_without_steerc(bases, tmp_path):
    cases = []
    ids = torch.randint(4, 100, (2, 9), generator=torch.Generator().manual_seed(5))
    for case, scenario in (("llama", "weights"), ("gpt2", "hooks"), ("gemma2", "hooks")):
        out, res, model = _compile(bases, tmp_path, case, scenario)
        handles = _reference_hooks(model, scenario)
        try:
            with torch.no_grad():
                ref = model(ids).logits
                gen = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=3)
        finally:
            for h in handles:
                h.remove()
        cases.append({"dir": str(out), "hooks": res.plan.target == "hooks", "ids": ids,
                      "ref": ref.float(), "gen": gen})
    run_without_steerc(tmp_path, SCRIPT, cases, HF_MODULES_CACHE=str(tmp_path / "hf_modules"))
