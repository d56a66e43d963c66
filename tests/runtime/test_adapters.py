"""Adapter claims, checked numerically on tiny random models of every family.

Hook name -> module: values read at each adapter module agree with output_hidden_states and
with explicit module calls; the write sites sum to the residual stream; edit sites put a
vector into the residual stream at the place the hook name says.
"""

from __future__ import annotations

import pytest
import torch

from steerc.arch.registry import ADAPTERS, adapter_for
from steerc.compiler.ir import Op
from steerc.diagnostics import DiagnosticError
from steerc.runtime import apply
from tests.runtime.helpers import iv, program, sae_at
from tests.tinymodels import make_tiny

KINDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
         "attn.hook_z", "ln2.hook_normalized")
ARCH_CASES = [("gpt2", None), ("llama", False), ("llama", True), ("mistral", None),
              ("qwen2", None), ("gemma2", None)]
FINAL_NORM = {"gpt2": "transformer.ln_f"}


def _probe(model, paths: dict[str, tuple[str, str]]):
    """Register read-only hooks; returns (values dict, handles)."""
    vals, handles = {}, []
    for name, (path, where) in paths.items():
        mod = model.get_submodule(path)
        if where == "in":
            def pre(m, args, kwargs, name=name):
                vals[name] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
            handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
        else:
            def post(m, args, out, name=name):
                vals[name] = (out[0] if isinstance(out, tuple) else out).detach().clone()
            handles.append(mod.register_forward_hook(post))
    return vals, handles


def _ids(n=7, seed=0):
    return torch.randint(4, 100, (2, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch,tied", ARCH_CASES)
def test_hook_modules_match_hidden_states(arch, tied):
    model, cfg = make_tiny(arch, tied=tied)
    ad = adapter_for(cfg)
    n = cfg.num_hidden_layers
    names = [f"blocks.{L}.{k}" for L in range(n) for k in KINDS] + ["hook_embed"]
    if arch == "gpt2":
        names.append("hook_pos_embed")
    vals, handles = _probe(model, {h: ad.module(h, cfg) for h in names})
    with torch.no_grad():
        hs = model(_ids(), output_hidden_states=True).hidden_states
    for h in handles:
        h.remove()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # noqa: E731
    emb = vals["hook_embed"] + (vals["hook_pos_embed"] if arch == "gpt2" else 0)
    close(emb, hs[0])
    norm = model.get_submodule(FINAL_NORM.get(arch, "model.norm"))
    for L in range(n):
        v = lambda k: vals[f"blocks.{L}.{k}"]  # noqa: E731
        close(v("hook_resid_pre"), hs[L])
        if L < n - 1:
            close(v("hook_resid_post"), hs[L + 1])
        else:  # hidden_states[-1] carries the final norm (docs/saes.md)
            close(norm(v("hook_resid_post")), hs[-1])
        close(v("hook_resid_mid"), v("hook_resid_pre") + v("hook_attn_out"))
        close(v("hook_resid_post"), v("hook_resid_mid") + v("hook_mlp_out"))
        p = ad.base_model(cfg) + (".h." if arch == "gpt2" else ".layers.") + str(L)
        with torch.no_grad():
            if arch == "gpt2":
                attn = model.get_submodule(p + ".attn.c_proj")(v("attn.hook_z"))
                mlp = model.get_submodule(p + ".mlp")(v("ln2.hook_normalized"))
            else:
                attn = model.get_submodule(p + ".self_attn.o_proj")(v("attn.hook_z"))
                mlp = model.get_submodule(p + ".mlp")(v("ln2.hook_normalized"))
                if arch == "gemma2":
                    attn = model.get_submodule(p + ".post_attention_layernorm")(attn)
                    mlp = model.get_submodule(p + ".post_feedforward_layernorm")(mlp)
        close(attn, v("hook_attn_out"))
        close(mlp, v("hook_mlp_out"))


@pytest.mark.parametrize("arch,tied", ARCH_CASES)
def test_write_sites_sum_to_residual_stream(arch, tied):
    model, cfg = make_tiny(arch, tied=tied)
    ad = adapter_for(cfg)
    sites = ad.write_sites(cfg)
    vals, handles = _probe(model, {s: (s, "out") for s in sites})
    last = f"blocks.{cfg.num_hidden_layers - 1}.hook_resid_post"
    post, h2 = _probe(model, {last: ad.module(last, cfg)})
    with torch.no_grad():
        model(_ids())
    for h in handles + h2:
        h.remove()
    torch.testing.assert_close(sum(vals[s] for s in sites), post[last], rtol=1e-4, atol=1e-4)


# Pairs of hook points that are the same place in the residual stream: adding one vector at
# either must give the same logits (this checks every edit site, resid_mid included).
SAME_PLACE = [("blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"),
              ("blocks.1.hook_resid_mid", "blocks.1.hook_attn_out"),
              ("blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"),
              ("hook_embed", "blocks.0.hook_resid_pre")]


@pytest.mark.parametrize("arch,tied", ARCH_CASES)
def test_edit_sites_add_to_the_stream(tmp_path, arch, tied):
    model, cfg = make_tiny(arch, tied=tied)
    sae = sae_at(tmp_path, "s", "blocks.1.hook_resid_post", cfg.hidden_size)
    saes = {"s": sae}
    ids = _ids()
    with torch.no_grad():
        base = model(ids).logits
    for a, b in SAME_PLACE:
        out = []
        for point in (a, b):
            prog = program(iv(Op.ADD, "s", 3, 5.0, point), saes=saes)
            with apply(model, prog, saes), torch.no_grad():
                out.append(model(ids).logits)
        torch.testing.assert_close(out[0], out[1], rtol=1e-4, atol=1e-4)
        assert (out[0] - base).abs().max() > 1e-2, f"add at {a} changed nothing"


def test_resid_mid_edit_reaches_the_residual_not_only_the_norm(tmp_path):
    """A naive pre-hook on ln_2 would change only the MLP input; the edit site must not."""
    model, cfg = make_tiny("llama")
    saes = {"s": sae_at(tmp_path, "s", "blocks.1.hook_resid_mid", cfg.hidden_size)}
    ad = adapter_for(cfg)
    vals, handles = _probe(model, {"post": ad.module("blocks.1.hook_resid_post", cfg)})
    prog = program(iv(Op.ADD, "s", 3, 5.0, "blocks.1.hook_resid_mid"), saes=saes)
    with torch.no_grad():
        model(_ids())
        before = vals["post"]
        with apply(model, prog, saes):
            model(_ids())
    for h in handles:
        h.remove()
    d = saes["s"].W_dec[3]
    mlp_change = vals["post"] - before - 5.0 * d  # what the MLP did differently
    assert (vals["post"] - before).abs().max() > 1.0
    assert mlp_change.abs().max() > 1e-3  # the MLP saw the edit too


def test_registry_literal_and_unknown():
    assert set(ADAPTERS) == {"gpt2", "llama", "mistral", "qwen2", "gemma2"}
    assert adapter_for("steerc_llama") is ADAPTERS["llama"]
    with pytest.raises(DiagnosticError) as e:
        adapter_for("gemma3")
    d = e.value.diagnostics[0]
    assert d.code == "E490" and "gpt2" in d.message and "gemma2" in d.message
    with pytest.raises(DiagnosticError) as e:
        ADAPTERS["llama"].module("blocks.1.hook_resid_psot", make_tiny("llama")[1])
    assert e.value.diagnostics[0].code == "E491" and "hook_resid_post" in e.value.diagnostics[0].hint
    with pytest.raises(DiagnosticError) as e:
        ADAPTERS["gpt2"].module("blocks.9.hook_resid_post", make_tiny("gpt2")[1])
    assert e.value.diagnostics[0].code == "E492"
