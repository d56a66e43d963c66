"""The intermediate representation: what a spec means, with every name resolved.

`resolve` produces a `Program`; `plan` lowers each `Intervention` to a weight edit or a
hook module; `steerc.runtime` applies a `Program` in process (the reference semantics).

Semantics at one hook point p with incoming activation x (B, T, d) — docs/semantics.md:

1. Every activation a_i(x) (for `set`/`scale`) and every condition is computed from the
   incoming x, before any edit at p.
2. delta = sum_add alpha d_i + sum_set (v - a_i(x)) d_i + sum_scale (k - 1) a_i(x) d_i,
   each term masked per token by its condition and position scope; x <- x + delta.
3. Local `project_out` rules at p remove the span of their unit directions:
   x <- x - Q Q^T x with Q an orthonormal basis of {u_j} (one subspace projection, so the
   order of ablate rules never matters).
4. `project_out` with `everywhere`: every residual write (token/position embeddings, every
   attention and MLP output, and steerc's own deltas) is projected, so the residual stream
   never holds a component in that subspace. This is what orthogonalizing the writers does.

Positions: `prompt` = tokens processed while the KV cache is empty (prefill); `generated` =
tokens processed with a non-empty cache. Weight edits always apply to all positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from steerc.diagnostics import Span


class Op(str, Enum):
    ADD = "add"                      # x <- x + value * d_i
    PROJECT_OUT = "project_out"      # x <- x - (u . x) u,  u = d_i / |d_i|
    SET = "set_activation"           # x <- x + (value - a_i(x)) d_i   (clamp; suppress = 0)
    SCALE = "scale_activation"       # x <- x + (value - 1) a_i(x) d_i

    @property
    def reads_activation(self) -> bool:
        """Its delta needs the feature's activation a_i(x), which only a hook computes, and
        only at the hook point of the feature's SAE (set, scale)."""
        return self in (Op.SET, Op.SCALE)

    @property
    def reads_input(self) -> bool:
        """Its result depends on the incoming x at its point (set/scale read a_i(x),
        project_out projects x), so a hook of it sees an add folded at that point."""
        return self is not Op.ADD

    @property
    def value_word(self) -> str | None:
        """How its value reads after the feature: `by` (add, scale), `=` (set), or None:
        project_out has no value."""
        return {Op.ADD: "by", Op.SCALE: "by", Op.SET: "="}.get(self)

    def intent(self, value: float) -> str | None:
        """Which way it moves its feature's activation: `down`, `up`, `toward` (set to a
        value > 0), or None (a no-op such as scale by 1)."""
        if self is Op.PROJECT_OUT or (self is Op.SET and value == 0):
            return "down"
        if self is Op.SET:
            return "toward"
        if self is Op.SCALE:
            return "down" if value < 1 else "up" if value > 1 else None
        return "down" if value < 0 else "up" if value > 0 else None


@dataclass(frozen=True)
class FeatureId:
    """A concrete feature: the spec's SAE alias and the feature index in that SAE. A named
    direction is the one feature (index 0) of a one-feature linear SAE bound under the
    direction's alias (`direction` True); it reads as its name."""

    sae: str
    index: int
    label: str | None = None
    direction: bool = False

    @property
    def ref(self) -> str:
        """How a spec refers to it, without the label: `res2[123]`, or a direction's name."""
        return self.sae if self.direction else f"{self.sae}[{self.index}]"

    def __str__(self) -> str:
        return self.ref + (f' "{self.label}"' if self.label else "")


@dataclass(frozen=True)
class Condition:
    """Per-token gate: the rule applies where a_feature(x) > threshold at `hook`."""

    feature: FeatureId
    hook: str
    threshold: float


@dataclass(frozen=True)
class Intervention:
    """One op on one feature. `points` are TransformerLens-style hook names
    (`blocks.2.hook_resid_post`); `everywhere` is only meaningful for PROJECT_OUT."""

    op: Op
    feature: FeatureId
    value: float
    points: tuple[str, ...]
    everywhere: bool = False
    positions: str = "all"
    condition: Condition | None = None
    span: Span | None = None
    origin: str = ""  # the rule as written, for explain and the audit trail


@dataclass(frozen=True)
class HubSource:
    """Where a model or SAE named on the Hugging Face Hub came from: the repo, the revision as
    written (None: the default branch), the commit sha it resolved to, the folder inside the
    repo (SAEs), and for `saelens "release" id "sae id"` the names it was looked up by."""

    repo: str
    revision: str | None
    commit: str
    folder: str | None = None
    release: str | None = None
    sae_id: str | None = None

    def uri(self) -> str:
        """`hf://org/repo[/folder]`, the location without revision (a stable display name)."""
        return f"hf://{self.repo}" + (f"/{self.folder}" if self.folder else "")


@dataclass(frozen=True)
class DirectionSource:
    """How a named direction's vector is made (docs/language.md "Directions").

    kind "file": read from `paths[0]` (`key`: which tensor; `layer`: which of the file's
    per-layer vectors, None for its one vector). kind "mean": the mean residual over the
    prompts of `paths[0]` minus that over `paths[1]`, at the binding's hook point, on the
    spec's model (`last`: over each prompt's last token only). `sha256s`: of each file's
    bytes when the spec was resolved."""

    name: str
    kind: str
    paths: tuple[str, ...]
    sha256s: tuple[str, ...]
    key: str | None = None
    layer: int | None = None
    last: bool = False


@dataclass(frozen=True)
class SaeBinding:
    """An SAE declared by the spec: alias, path (as resolved on disk), hook point, sizes, hash;
    `source` when the spec named it on the Hub (then `path` is in the Hub cache)."""

    alias: str
    path: str
    hook: str
    d_in: int
    d_sae: int
    sha256: str
    format: str = "saelens"
    source: HubSource | None = None
    span: Span | None = None  # the `sae` line's path (where SAE/model mismatches are reported)
    direction: DirectionSource | None = None  # a named direction's one-feature linear SAE


@dataclass(frozen=True)
class JsonConstraint:
    """Decode-time guard: any JSON (`schema is None`) or JSON valid against `schema` (JSON text)."""

    schema_path: str | None
    schema: str | None
    span: Span | None = None


@dataclass(frozen=True)
class ExpectCheck:
    """One `expect` line for `steerc verify` (docs/verify.md "Expectations").

    kind: is_json | matches_schema | mentions | not_mentions (on `prompt`, or with `percent`
    set on every prompt of the file `texts`: at least `percent`% must pass); kl_below (mean
    KL on `texts`, else verify's neutral text, below `bound`); down | up (the summed mean
    activation of `features` on `texts`, else verify's prompt set, changes by `percent`%;
    `arg` is the target as written).
    `baseline`: the spec's `baseline prompt`, which verify also runs every expect with."""

    prompt: str
    kind: str
    arg: str | None
    span: Span | None = None
    texts: str | None = None         # a prompt file (path as resolved)
    texts_sha256: str | None = None  # of its bytes when the spec was resolved
    percent: float | None = None
    bound: float | None = None
    features: tuple[FeatureId, ...] = ()
    baseline: str | None = None


@dataclass(frozen=True)
class Calibrated:
    """The strength t of a spec's `auto` rules (`steer X by auto`), found by `steerc
    calibrate` and read from the spec's lock; `rules` are the origins of those rules, whose
    interventions hold t times their unit (steerc/compiler/resolve/auto.py)."""

    t: float
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Program:
    """A resolved spec: the root of the IR."""

    spec_file: str
    model: str
    saes: tuple[SaeBinding, ...]
    catalogue: str | None
    interventions: tuple[Intervention, ...]
    json: JsonConstraint | None = None
    expects: tuple[ExpectCheck, ...] = ()
    files: tuple[str, ...] = ()  # every spec file read (the root and its `use`s)
    model_source: HubSource | None = None  # set when `model` names a Hub repo (model: its cache folder)
    model_span: Span | None = None  # the `model` line's path (model problems are reported there)
    calibrated: Calibrated | None = None  # set when the spec has `auto` rules

    def sae(self, alias: str) -> SaeBinding:
        for b in self.saes:
            if b.alias == alias:
                return b
        raise KeyError(alias)
