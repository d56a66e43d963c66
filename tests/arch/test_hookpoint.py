"""`HookPoint`: the one parser/renderer of TransformerLens hook names, and its facts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerc.arch.hookpoint import BLOCK_KINDS, GLOBAL_KINDS, TL_ONLY_KINDS, HookPoint
from steerc.diagnostics import DiagnosticError

KIND = st.sampled_from(BLOCK_KINDS + TL_ONLY_KINDS)
POINT = st.one_of(st.builds(HookPoint, st.none(), st.sampled_from(GLOBAL_KINDS)),
                  st.builds(HookPoint, st.integers(0, 10**6), KIND))

# One block in the order the forward pass reaches its hook points.
FORWARD_BLOCK = ("hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
                 "attn.hook_v", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                 "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out",
                 "hook_resid_post")


@given(POINT)
def test_render_then_read_is_identity(p):
    assert HookPoint.read(p.name) == p
    assert str(p) == p.name


def _spelled(p: HookPoint, zeros: int, junk: str) -> str:
    name = p.name if p.layer is None else f"blocks.{'0' * zeros}{p.layer}.{p.kind}"
    return name + junk


@given(st.one_of(st.text(), st.builds(_spelled, POINT, st.integers(0, 2), st.sampled_from(["", " ", "x", ".hook_z"]))))
def test_read_never_raises_and_canonicalises(text):
    p = HookPoint.read(text)
    if p is not None:
        assert HookPoint.read(p.name) == p
        assert p.name == text or (p.layer is not None and text.startswith("blocks.0"))


def test_examples():
    assert HookPoint.parse("blocks.3.hook_resid_post") == HookPoint(3, "hook_resid_post")
    assert HookPoint.parse("hook_embed") == HookPoint(None, "hook_embed")
    assert HookPoint.parse("blocks.0.attn.hook_z").name == "blocks.0.attn.hook_z"
    assert HookPoint.read("blocks.007.hook_mlp_out").name == "blocks.7.hook_mlp_out"


@pytest.mark.parametrize("name", ["blocks.\u0663.hook_resid_post", "blocks.1.hook_embed",
                                  "blocks.1.mlp.hook_post", "blocks.-1.hook_resid_post",
                                  "layers.1", "blocks.1.hook_resid_pos", "", "hook_embed "])
def test_parse_refuses_what_steerc_cannot_hook(name):
    with pytest.raises(DiagnosticError) as e:
        HookPoint.parse(name)
    (d,) = e.value.diagnostics
    assert d.code == "E491" and name in d.message


def test_read_knows_tl_kinds_that_parse_refuses():
    assert HookPoint.read("blocks.1.mlp.hook_post") == HookPoint(1, "mlp.hook_post")
    assert not HookPoint.read("blocks.1.mlp.hook_post").hookable
    assert HookPoint.read("blocks.\u0663.hook_resid_post") is None


def test_did_you_mean_and_layer_range():
    with pytest.raises(DiagnosticError) as e:
        HookPoint.parse("blocks.1.hook_resid_pos")
    assert e.value.diagnostics[0].hint == "did you mean 'hook_resid_post'?"
    with pytest.raises(DiagnosticError) as e:
        HookPoint.parse("blocks.4.hook_resid_post", n_layers=4)
    (d,) = e.value.diagnostics
    assert (d.code, d.hint) == ("E492", "layers are 0..3")
    assert HookPoint.parse("blocks.3.hook_resid_post", n_layers=4).layer == 3
    assert HookPoint.parse("hook_embed", n_layers=0).layer is None


def test_forward_order():
    want = [HookPoint(None, "hook_embed"), HookPoint(None, "hook_pos_embed")]
    want += [HookPoint(L, k) for L in (0, 1, 10) for k in FORWARD_BLOCK]
    got = list(want)
    random.Random(0).shuffle(got)
    assert sorted(got) == want


@given(POINT, POINT)
def test_order_is_total_and_agrees_with_equality(p, q):
    assert [p < q, p == q, q < p].count(True) == 1
    assert (p <= q) == (p < q or p == q)


@pytest.mark.parametrize("name,residual,space,slot,fold", [
    ("hook_embed", False, True, -1, -1),
    ("hook_pos_embed", False, True, None, -1),
    ("blocks.0.hook_resid_pre", True, True, -1, -1),
    ("blocks.2.hook_resid_pre", True, True, 1, 1),
    ("blocks.2.hook_resid_mid", True, True, None, None),
    ("blocks.2.hook_resid_post", True, True, 2, 2),
    ("blocks.2.hook_attn_out", False, True, None, None),
    ("blocks.2.hook_mlp_out", False, True, None, 2),
    ("blocks.2.attn.hook_z", False, False, None, None),
    ("blocks.2.ln2.hook_normalized", False, False, None, None),
])
def test_residual_facts(name, residual, space, slot, fold):
    p = HookPoint.parse(name)
    assert (p.residual, p.residual_space, p.residual_slot, p.fold_slot) == (residual, space, slot, fold)


def test_the_adapters_hook_exactly_the_hookable_kinds():
    from steerc.arch.registry import ADAPTERS

    block, glob = set(), set()
    for adapter in set(ADAPTERS.values()):
        block |= set(getattr(adapter, "hooks", {}))
        glob |= set(getattr(adapter, "global_hooks", {}))
    assert block == set(BLOCK_KINDS) and glob == set(GLOBAL_KINDS)
