"""Shared test helpers: programs from interventions, SAEs on disk, tiny configs."""

from __future__ import annotations

from types import SimpleNamespace

from steerc.compiler.ir import Condition, FeatureId, Intervention, Op, Program, SaeBinding
from steerc.saes.load import load_sae
from tests.tinymodels import random_sae_dir


def program(*ivs, saes: dict) -> Program:
    binds = tuple(SaeBinding(a, str(s.path), s.cfg.hook_name, s.cfg.d_in, s.cfg.d_sae, "0" * 64)
                  for a, s in saes.items())
    return Program("test.steer", "tiny", binds, None, tuple(ivs))


def iv(op: Op, sae: str, index: int, value: float, point: str, *, everywhere=False,
       positions="all", cond=None) -> Intervention:
    """cond: (sae, index, hook, threshold) or None."""
    c = None
    if cond is not None:
        c = Condition(FeatureId(cond[0], cond[1]), cond[2], cond[3])
    return Intervention(op, FeatureId(sae, index), value, (point,), everywhere, positions, c)


def sae_at(tmp_path, name: str, hook: str, d_in: int, d_sae: int = 64, architecture="jumprelu",
           **kw):
    return load_sae(random_sae_dir(d_in, d_sae, hook, tmp_path / name, architecture, **kw))


def stub_config(d: int = 32, n_layers: int = 3, model_type: str = "llama"):
    return SimpleNamespace(hidden_size=d, num_hidden_layers=n_layers, model_type=model_type,
                           tie_word_embeddings=False)
