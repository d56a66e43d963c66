"""Adapter claims, checked numerically on tiny random models of every family.

Hook name -> module: values read at each adapter module agree with output_hidden_states and
with explicit module calls; the write sites sum to the residual stream; edit sites put a
vector into the residual stream at the place the hook name says.
"""

from __future__ import annotations

from pathlib import Path

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
              ("qwen2", None), ("gemma2", None), ("qwen3", None), ("gemma3_text", None),
              ("phi3", None), ("olmo2", None), ("gpt_neox", None), ("gpt_neox_seq", None),
              ("qwen2_moe", None)]
OVERRIDES = {"gpt_neox_seq": ("gpt_neox", {"use_parallel_residual": False})}
FINAL_NORM = {"gpt2": "transformer.ln_f", "gpt_neox": "gpt_neox.final_layer_norm"}
# The module whose input is attn.hook_z, per family (relative to the layer).
O_PROJ = {"gpt2": "attn.c_proj", "gpt_neox": "attention.dense"}
POST_NORMS = ("gemma2", "gemma3_text", "olmo2")  # a norm after each writer


def _tiny(arch, tied):
    arch, kw = OVERRIDES.get(arch, (arch, {}))
    return make_tiny(arch, tied=tied, **kw)


def _parallel(cfg) -> bool:
    return bool(getattr(cfg, "use_parallel_residual", False))


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
    model, cfg = _tiny(arch, tied)
    arch = cfg.model_type
    ad = adapter_for(cfg)
    n = cfg.num_hidden_layers
    kinds = [k for k in KINDS if k in ad.block_hooks(cfg)]
    names = [f"blocks.{L}.{k}" for L in range(n) for k in kinds] + ["hook_embed"]
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
        if _parallel(cfg):  # both sublayers read resid_pre; there is no resid_mid
            close(v("hook_resid_post"), v("hook_resid_pre") + v("hook_attn_out") + v("hook_mlp_out"))
        else:
            close(v("hook_resid_mid"), v("hook_resid_pre") + v("hook_attn_out"))
            close(v("hook_resid_post"), v("hook_resid_mid") + v("hook_mlp_out"))
        p = ad.base_model(cfg) + (".h." if arch == "gpt2" else ".layers.") + str(L)
        mlp_in = v("ln2.hook_normalized") if "ln2.hook_normalized" in kinds else v("hook_resid_mid")
        with torch.no_grad():
            attn = model.get_submodule(f"{p}.{O_PROJ.get(arch, 'self_attn.o_proj')}")(v("attn.hook_z"))
            mlp = model.get_submodule(p + ".mlp")(mlp_in)
            if arch in POST_NORMS:
                attn = model.get_submodule(p + ".post_attention_layernorm")(attn)
                mlp = model.get_submodule(p + ".post_feedforward_layernorm")(mlp)
        close(attn, v("hook_attn_out"))
        close(mlp, v("hook_mlp_out"))


@pytest.mark.parametrize("arch,tied", ARCH_CASES)
def test_write_sites_sum_to_residual_stream(arch, tied):
    model, cfg = _tiny(arch, tied)
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
    model, cfg = _tiny(arch, tied)
    sae = sae_at(tmp_path, "s", "blocks.1.hook_resid_post", cfg.hidden_size)
    saes = {"s": sae}
    ids = _ids()
    with torch.no_grad():
        base = model(ids).logits
    same = list(SAME_PLACE)
    if _parallel(cfg):  # attn_out and mlp_out both go straight into resid_post
        same[1] = ("blocks.1.hook_attn_out", "blocks.1.hook_mlp_out")
    for a, b in same:
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
    assert set(ADAPTERS) == {"gpt2", "llama", "mistral", "qwen2", "gemma2", "qwen3", "gemma3_text",
                             "phi3", "olmo2", "gpt_neox", "qwen2_moe"}
    assert all(mt in ad.model_types for mt, ad in ADAPTERS.items())
    assert adapter_for("steerc_llama") is ADAPTERS["llama"]
    with pytest.raises(DiagnosticError) as e:
        adapter_for("falcon")
    d = e.value.diagnostics[0]
    assert d.code == "E490" and all(mt in d.message for mt in ADAPTERS)
    doc = Path(__file__).parents[2] / "docs" / "language.md"
    row = next(line for line in doc.read_text().splitlines() if line.startswith("| E490 "))
    assert all(f"`{mt}`" in row for mt in ADAPTERS), "docs/language.md E490 lists every family"
    with pytest.raises(DiagnosticError) as e:
        ADAPTERS["llama"].module("blocks.1.hook_resid_psot", make_tiny("llama")[1])
    assert e.value.diagnostics[0].code == "E491" and "hook_resid_post" in e.value.diagnostics[0].hint
    with pytest.raises(DiagnosticError) as e:
        ADAPTERS["gpt2"].module("blocks.9.hook_resid_post", make_tiny("gpt2")[1])
    assert e.value.diagnostics[0].code == "E492"


@pytest.mark.parametrize("arch,overrides,hook,why", [
    ("gpt_neox", {}, "blocks.1.hook_resid_mid", "use_parallel_residual"),
    ("olmo2", {}, "blocks.1.ln2.hook_normalized", "no norm before the MLP"),
])
def test_hook_kinds_a_model_lacks_are_diagnostics(arch, overrides, hook, why):
    _, cfg = make_tiny(arch, **overrides)
    ad = adapter_for(cfg)
    for call in (ad.module, ad.edit_site):
        with pytest.raises(DiagnosticError) as e:
            call(hook, cfg)
        d = e.value.diagnostics[0]
        assert d.code == "E491" and why in d.message and "hook_resid_post" in d.hint
    _, seq = make_tiny("gpt_neox", use_parallel_residual=False)
    assert adapter_for(seq).module("blocks.1.hook_resid_mid", seq)[0].endswith("post_attention_layernorm")
