"""modeling_steerc.py ships inside checkpoints: it must import nothing but torch (and the
standard library), and work when loaded from a bare copy. Builder errors are diagnostics."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest
import torch

import steerc.runtime.modeling_steerc as ms
from steerc.arch.registry import adapter_for
from steerc.compiler.ir import Op
from steerc.diagnostics import DiagnosticError
from steerc.runtime.build_hooks import build_hooks
from tests.shipped import top_level_imports
from tests.runtime.helpers import iv, program, sae_at, stub_config

STDLIB_OK = {"__future__", "inspect", "math"}


def test_imports_only_torch_and_stdlib():
    roots = top_level_imports(ms.__file__)
    assert roots <= STDLIB_OK | {"torch", "transformers"}, roots


def test_bare_copy_computes_the_same(tmp_path):
    shutil.copy(ms.__file__, tmp_path / "modeling_steerc.py")
    spec = importlib.util.spec_from_file_location("bare_modeling_steerc", tmp_path / "modeling_steerc.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bare_modeling_steerc"] = mod
    try:
        spec.loader.exec_module(mod)
        hook = "blocks.1.hook_resid_post"
        saes = {"s": sae_at(tmp_path, "s", hook, 32, architecture="gated")}
        cfg = stub_config()
        ours = build_hooks(program(iv(Op.SET, "s", 2, 1.0, hook), iv(Op.SCALE, "s", 4, 2.0, hook),
                                   saes=saes), saes, cfg, adapter_for(cfg))
        bare = mod.SteercHooks(ours.spec)
        bare.load_state_dict(ours.state_dict())
        x = torch.randn(2, 3, 32) * 3
        torch.testing.assert_close(bare.hooks[0](x), ours.hooks[0](x), rtol=0, atol=0)
    finally:
        del sys.modules["bare_modeling_steerc"]


def _build(tmp_path, *ivs, hook="blocks.1.hook_resid_post"):
    saes = {"s": sae_at(tmp_path, "s", hook, 32), "t": sae_at(tmp_path, "t", "blocks.0.hook_resid_post", 32)}
    cfg = stub_config()
    return build_hooks(program(*ivs, saes=saes), saes, cfg, adapter_for(cfg))


@pytest.mark.parametrize("bad,code", [
    (iv(Op.SET, "s", 1, 0.0, "blocks.0.hook_resid_post"), "E494"),
    (iv(Op.ADD, "s", 1, 1.0, "blocks.0.hook_resid_pre", cond=("t", 2, "blocks.0.hook_resid_post", 0.0)), "E495"),
    (iv(Op.ADD, "s", 1, 1.0, "blocks.1.hook_resid_post", cond=("t", 2, "blocks.1.hook_resid_post", 0.0)), "E495"),
    (iv(Op.PROJECT_OUT, "s", 1, 0.0, "blocks.1.hook_resid_post", everywhere=True, positions="prompt"), "E493"),
])
def test_builder_errors_are_diagnostics(tmp_path, bad, code):
    with pytest.raises(DiagnosticError) as e:
        _build(tmp_path, bad)
    assert e.value.diagnostics[0].code == code


def test_mixed_ablation_scopes_refused(tmp_path):
    p = "blocks.1.hook_resid_post"
    with pytest.raises(DiagnosticError) as e:
        _build(tmp_path, iv(Op.PROJECT_OUT, "s", 1, 0.0, p), iv(Op.PROJECT_OUT, "s", 2, 0.0, p, positions="prompt"))
    assert e.value.diagnostics[0].code == "E496"
