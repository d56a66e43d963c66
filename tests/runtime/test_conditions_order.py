"""Conditions read at an earlier hook point, and forward-order registration of hooks."""

from __future__ import annotations

import torch

from steerc.compiler.ir import Op
from steerc.runtime import apply
from tests.runtime.helpers import iv, program, sae_at
from tests.runtime.naive import encode_one
from tests.tinymodels import make_tiny


def _ids():
    return torch.randint(4, 100, (2, 8), generator=torch.Generator().manual_seed(1))


def test_condition_from_an_earlier_hook_point(tmp_path):
    model, cfg = make_tiny("llama")
    early, late = "blocks.0.hook_resid_post", "blocks.2.hook_resid_pre"
    saes = {"t": sae_at(tmp_path, "t", early, cfg.hidden_size, seed=3),
            "s": sae_at(tmp_path, "s", late, cfg.hidden_size, seed=4)}
    ids = _ids()
    seen = {}
    h = model.model.layers[0].register_forward_hook(lambda m, a, o: seen.__setitem__("x", o.detach()))
    with torch.no_grad():
        model(ids)
    h.remove()
    a_t, _ = encode_one(seen["x"], saes["t"], 2)
    v = a_t.flatten().unique()                    # sorted; threshold between two values, so
    thr = float(v[len(v) // 2 - 1] + v[len(v) // 2]) / 2  # fp32 vs fp64 cannot flip a token
    mask = (a_t > thr).float()
    assert 0 < mask.mean() < 1
    d = saes["s"].W_dec[3]
    # Reference: add 5 d at layer 2's input only where the layer-0 condition held.
    h = model.model.layers[2].register_forward_pre_hook(
        lambda m, a: (a[0] + 5.0 * mask[..., None].to(a[0].dtype) * d,) + a[1:])
    with torch.no_grad():
        want = model(ids).logits
    h.remove()
    prog = program(iv(Op.ADD, "s", 3, 5.0, late, cond=("t", 2, early, thr)), saes=saes)
    with apply(model, prog, saes) as hooks, torch.no_grad():
        got = model(ids).logits
    assert [x["hook"] for x in hooks.spec["hooks"]] == [early, late]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rule_order_in_the_program_does_not_matter(tmp_path):
    """attn_out and resid_mid sit on the same module; hooks register in forward order, so
    the resid_mid rule always reads the attention write after the attn_out rule edited it."""
    for arch in ("llama", "gemma2", "gpt2"):
        model, cfg = make_tiny(arch)
        mid, attn = "blocks.1.hook_resid_mid", "blocks.1.hook_attn_out"
        saes = {"m": sae_at(tmp_path, f"m{arch}", mid, cfg.hidden_size, seed=5),
                "a": sae_at(tmp_path, f"a{arch}", attn, cfg.hidden_size, seed=6)}
        rules = [iv(Op.SET, "m", 1, 4.0, mid), iv(Op.SCALE, "m", 2, 3.0, mid),
                 iv(Op.ADD, "a", 5, 6.0, attn), iv(Op.SET, "a", 3, 0.0, attn)]
        outs = []
        for order in (rules, rules[::-1]):
            with apply(model, program(*order, saes=saes), saes), torch.no_grad():
                outs.append(model(_ids()).logits)
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)  # op-row sum order only
        # and it is the forward-order semantics: resid_mid's rule sees the edited write
        seen = {}
        with apply(model, program(iv(Op.ADD, "a", 5, 6.0, attn), saes=saes), saes), torch.no_grad():
            ad_hook = model.get_submodule(
                {"gpt2": "transformer.h.1.ln_2", "gemma2": "model.layers.1.pre_feedforward_layernorm"}
                .get(arch, "model.layers.1.post_attention_layernorm"))
            h = ad_hook.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0].detach()))
            model(_ids())
            h.remove()
        a_m, s_m = encode_one(seen["x"], saes["m"], 1)
        d = saes["m"].W_dec[1].double()
        x_mid = seen["x"].double() + (4.0 - a_m)[..., None] * s_m[..., None] * d
        seen2 = {}
        with apply(model, program(iv(Op.ADD, "a", 5, 6.0, attn), iv(Op.SET, "m", 1, 4.0, mid),
                                  saes=saes), saes), torch.no_grad():
            h = ad_hook.register_forward_pre_hook(lambda m, a: seen2.__setitem__("x", a[0].detach()))
            model(_ids())
            h.remove()
        torch.testing.assert_close(seen2["x"].double(), x_mid, rtol=1e-5, atol=1e-5)
