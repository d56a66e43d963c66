"""steerc.runtime: the exact hook math (modeling_steerc, self-contained), the IR -> hooks
builder, and `apply(model, program, saes)` (the in-process reference semantics)."""

from steerc.compiler.edits import orthonormal_basis
from steerc.runtime.apply import apply
from steerc.runtime.build_hooks import build_hooks
from steerc.runtime.modeling_steerc import FeatureGroup, SteercHooks, SteerHook, install

__all__ = ["apply", "build_hooks", "orthonormal_basis", "SteercHooks", "SteerHook",
           "FeatureGroup", "install"]
