"""Output targets: the one registry (`TARGETS`), each target one module implementing
`steerc.targets.base.Target`.

`--target auto` is not a target: the plan resolves it to `weights` when every rule is an
exact weight edit and the spec has no decode-time guard, else to `hooks`.
"""

from steerc.targets.base import Artifacts, BaseModel, Job, Refusal, Target
from steerc.targets.gguf_cvec import GgufCvecTarget
from steerc.targets.hooks import HooksTarget
from steerc.targets.lora import LoraTarget
from steerc.targets.weights import WeightsTarget

TARGETS: dict[str, Target] = {t.name: t for t in (WeightsTarget(), HooksTarget(), LoraTarget(),
                                                    GgufCvecTarget())}
TARGET_NAMES = ("auto", *TARGETS)  # what --target accepts


def check_target(name: str) -> None:
    """ValueError unless `name` is `auto` or a registered target."""
    if name != "auto" and name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; one of {('auto', *TARGETS)}")


__all__ = ["TARGETS", "TARGET_NAMES", "check_target", "Artifacts", "BaseModel", "Job", "Refusal", "Target"]
