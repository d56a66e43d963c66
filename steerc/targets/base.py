"""What a target is: the one interface every output format implements.

A target says which lowerings it can express (`refusal`, asked once per lowering by the
plan's `apply_target` pass, so `explain`, `check`-time planning and `compile` agree) and
writes its output from a `Job` (`emit(job, out) -> Artifacts`). Everything a target needs
is on the job; everything the compiler, the manifest, the model card and `verify` need back
is on the artifacts, so no target calls back into the compiler.

Adding a target is one module here and one line in `steerc.targets.TARGETS`. Module level
imports stay light (no torch): the registry is read by `check` and by argument parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:  # only for annotations: the compiler imports this package, not the reverse
    from steerc.checkpoint.output import TensorOutput
    from steerc.checkpoint.reader import Checkpoint
    from steerc.compiler.ir import Program
    from steerc.compiler.plan import Lowering, Plan
    from steerc.diagnostics import Diagnostic


@dataclass(frozen=True)
class BaseModel:
    """The base checkpoint a spec steers: transformers config, its config.json as a dict,
    the architecture adapter, and the lazily read weights."""

    config: Any
    raw_config: dict
    adapter: Any
    checkpoint: "Checkpoint"


@dataclass(frozen=True)
class Job:
    """One compile, as a target sees it. `directions`: feature -> fp32 decoder row [d];
    `jobs`: tensors made at once (the output never depends on it)."""

    program: "Program"
    plan: "Plan"
    base: BaseModel
    saes: Mapping[str, Any]
    directions: Callable
    progress: bool = False
    jobs: int | None = None


@dataclass
class Artifacts:
    """What a target wrote into the output directory.

    `config`: config.json to write beside the weights, or None when the output is not a
    transformers checkpoint (then no base side files are copied either). `tensors`: the
    written weight files with their hashes (`checkpoint.output.TensorOutput`). `records`:
    one audit record per written tensor. `code_files`: Python files a loader must run (their
    presence is the one fact that says `trust_remote_code=True` is needed). `hooks`: one
    summary row per hook module."""

    config: dict | None
    tensors: "TensorOutput"
    records: list[dict]
    code_files: tuple[str, ...] = ()
    hooks: list[dict] = field(default_factory=list)

    @property
    def remote_code(self) -> bool:
        """Whether loading the output needs `trust_remote_code=True`."""
        return bool(self.code_files)


@dataclass(frozen=True)
class Refusal:
    """Why a target cannot express one lowering: the code, the reason (shown after "cannot be
    lowered to <target.expresses>:"), and what to do instead."""

    code: str
    reason: str
    hint: str


class Target(Protocol):
    """An output format. `name` is what `--target` takes; `summary` one line for help and the
    README; `expresses` completes "cannot be lowered to ..." in a refusal; `runs_hooks`:
    whether hook modules can run in its output (if not, no plan pass moves an exact edit to
    a hook); `engines`: where its output runs (`engines.EngineSupport` rows, printed by the
    model card: every target states them, so no card is silent or wrong about it).

    Optional members, for an output that is not a transformers checkpoint (read with
    `getattr`; a checkpoint target defines none): `library_name` (the card's Hub metadata,
    default "transformers"), `card_sections(program, plan, manifest) -> lines` (the card's
    "how to load" part: lora), `model_card(program, plan, manifest) -> str` (the whole card:
    gguf-cvec), `loads_as` / `usage` (the last line `steerc compile` prints), and
    `explain_lowering(lowering) -> str` (how `explain` names an accepted lowering)."""

    name: str
    summary: str
    expresses: str
    runs_hooks: bool
    engines: tuple

    def refusal(self, lowering: "Lowering") -> Refusal | None:
        """Why this target cannot express `lowering`, or None when it can."""

    def program_refusals(self, program: "Program") -> list["Diagnostic"]:
        """Refusals of the spec as a whole (e.g. a decode-time guard it cannot carry)."""

    def emit(self, job: Job, out: Path) -> Artifacts:
        """Write the output into the empty directory `out`."""
