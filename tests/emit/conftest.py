"""Fixtures for emit tests: tiny base checkpoints on disk (one per family, built once), SAEs,
hand-built Programs per scenario, and a cache of compiled outputs shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from steerc.compiler.ir import Condition, FeatureId, Intervention, Op, Program, SaeBinding
from steerc.saes import load_sae
from tests.tinymodels import HIDDEN, random_sae_dir, save_tiny

# (case id, tiny arch, tied)
FAMILIES = (("gpt2", "gpt2", None), ("llama", "llama", False), ("llama_tied", "llama", True),
            ("mistral", "mistral", None), ("qwen2", "qwen2", None), ("gemma2", "gemma2", None),
            ("qwen3", "qwen3", None), ("gemma3_text", "gemma3_text", None), ("phi3", "phi3", None),
            ("olmo2", "olmo2", None), ("gpt_neox", "gpt_neox", None),
            ("gpt_neox_seq", "gpt_neox", None), ("qwen2_moe", "qwen2_moe", None))
OVERRIDES = {"gpt_neox_seq": {"use_parallel_residual": False}}  # case -> config overrides
SCENARIOS = ("add", "ablate", "add_ablate", "hooks")
P1 = "blocks.1.hook_resid_post"

# Which scenarios land on the weights target under `--target auto`, per family, and why:
# adds after a layer need a writer bias (GPT-2, Llama, Mistral/Qwen2 as Llama, GPT-NeoX);
# `ablate everywhere` needs every writer to land unnormalised (not Gemma's or OLMo-2's
# post-norms); an add at resid_pre 0 needs an unscaled embedding (not Gemma's sqrt(d)).
_ALL = {"add", "ablate", "add_ablate", "add_embed"}
WEIGHTS = {"gpt2": _ALL, "llama": _ALL, "llama_tied": _ALL, "mistral": _ALL, "qwen2": _ALL,
           "gpt_neox": _ALL, "gpt_neox_seq": _ALL,
           "qwen3": {"ablate", "add_embed"}, "phi3": {"ablate", "add_embed"},
           "qwen2_moe": {"ablate", "add_embed"}, "olmo2": {"add_embed"},
           "gemma2": set(), "gemma3_text": set()}


def _iv(op, i, value, point, origin, **kw) -> Intervention:
    return Intervention(op, FeatureId("r", i), value, (point,), origin=origin, **kw)


def interventions(scenario: str) -> tuple[Intervention, ...]:
    """The IR of one scenario (ops on SAE `r` at blocks.1.hook_resid_post, d = HIDDEN)."""
    add = (_iv(Op.ADD, 3, 4.0, P1, "steer r[3] by 4"),
           _iv(Op.ADD, 5, -2.0, "blocks.0.hook_resid_pre", "steer r[5] by -2 at resid_pre 0"),
           _iv(Op.ADD, 6, 1.5, "blocks.2.hook_resid_pre", "steer r[6] by 1.5 at resid_pre 2"))
    ablate = (_iv(Op.PROJECT_OUT, 7, 0.0, P1, "ablate r[7] everywhere", everywhere=True),
              _iv(Op.PROJECT_OUT, 9, 0.0, P1, "ablate r[9] everywhere", everywhere=True))
    if scenario == "add":
        return add
    if scenario == "add_embed":
        return add[1:2]
    if scenario == "ablate":
        return ablate
    if scenario == "add_ablate":
        return add + ablate[:1]
    if scenario == "hooks_everywhere":  # a hook delta must be projected too: all hooks
        return interventions("hooks")[:3] + add[:1] + ablate[:1]
    assert scenario == "hooks"
    return (_iv(Op.SET, 3, 2.0, P1, "clamp r[3] to 2"),
            _iv(Op.SET, 11, 0.0, P1, "suppress r[11]"),
            _iv(Op.SCALE, 4, 0.5, P1, "scale r[4] by 0.5"),
            _iv(Op.ADD, 5, 3.0, P1, "when r[6] > 0.1 { steer r[5] by 3 }",
                condition=Condition(FeatureId("r", 6), P1, 0.1)),
            _iv(Op.ADD, 8, 3.0, "blocks.0.hook_resid_post", "steer r[8] by 3 on generated",
                positions="generated"),
            _iv(Op.PROJECT_OUT, 7, 0.0, P1, "ablate r[7]"),
            _iv(Op.ADD, 9, 1.5, "blocks.2.hook_resid_post", "steer r[9] by 1.5"))


class Bases:
    """Base checkpoints and SAEs under one session temp dir, built on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.models: dict = {}
        sae_dir = random_sae_dir(HIDDEN, 64, P1, root / "sae")
        self.sae = load_sae(sae_dir)
        self.binding = SaeBinding("r", str(sae_dir), P1, HIDDEN, 64, self.sae.sha256())
        self.compiled: dict = {}

    def base(self, case: str, **kw) -> tuple[Path, torch.nn.Module]:
        """(dir, in-memory model) of a family's base checkpoint; `kw` e.g. sharded=True."""
        key = (case, tuple(sorted(kw.items())))
        if key not in self.models:
            _, arch, tied = next(f for f in FAMILIES if f[0] == case)
            d = self.root / "bases" / ("_".join([case] + [f"{k}{v}" for k, v in sorted(kw.items())]))
            model = save_tiny(arch, d, tied=tied, **OVERRIDES.get(case, {}), **kw)
            self.models[key] = (d, model)
        return self.models[key]

    def program(self, case: str, scenario: str, **kw) -> Program:
        d, _ = self.base(case, **kw)
        return Program(f"{scenario}.steer", str(d), (self.binding,), None, interventions(scenario))

    def compile(self, case: str, scenario: str, target: str = "auto"):
        """Compile once per (case, scenario, target); returns (out dir, CompileResult)."""
        from steerc.compiler.build_checkpoint import compile_program

        key = (case, scenario, target)
        if key not in self.compiled:
            out = self.root / "out" / f"{case}-{scenario}-{target}"
            res = compile_program(self.program(case, scenario), out, target=target,
                                  saes={"r": self.sae})
            self.compiled[key] = (out, res)
        return self.compiled[key]


@pytest.fixture(scope="session")
def bases(tmp_path_factory) -> Bases:
    return Bases(tmp_path_factory.mktemp("emit"))


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
