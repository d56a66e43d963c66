"""Lowering plan: for each IR intervention, an exact weight edit, a hook module, or a refusal.

`plan(program, config, adapter, target)` runs the passes in `PASSES` (pure functions
Plan -> Plan, each idempotent) and returns the final `Plan`. Rules (docs/semantics.md):

- ADD at `blocks.L.hook_resid_post` (= `blocks.L+1.hook_resid_pre`), all positions, no
  condition -> the bias of the adapter's `BiasSlot` for L. ADD at `resid_pre` 0 /
  `hook_embed` -> every row of an unscaled embedding (an untied one if the family has it,
  else the token embedding, untying a tied head). Scaled embeddings (Gemma) -> hook.
- PROJECT_OUT `everywhere` -> orthogonalize every writer, its bias and every embedding
  (untie a tied head).
- Everything else (SET, SCALE, conditions, position scopes, local PROJECT_OUT, families with
  post-writer norms except an add into their unscaled embedding) -> hook.
- A folded ADD would be seen by a hook reading the same point (the reference computes
  activations before any edit at a point), and a hook's own delta must be projected by an
  `everywhere` rule: such combinations go to hooks together (`isolate_hook_points`).

`enforce json` ships decode-time code, so it needs the hooks target too (E411 under weights).

Targets (`steerc.targets`, one registry) say what they can express: `weights` refuses
(E410) what is not exact, naming the rule and `--target hooks`; `hooks` keeps exact edits as
weights and hooks the rest; `auto` picks `weights` when every rule is exact, else `hooks`.
Nothing is ever approximated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from steerc.arch.hookpoint import HookPoint
from steerc.compiler.ir import Intervention, Op, Program
from steerc.compiler.rulegroups import counted, group_by_rule
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.targets import TARGETS, check_target

Kind = Literal["weights", "hook", "refused"]

@dataclass(frozen=True)
class Lowering:
    """How one intervention is lowered. `tensors`: checkpoint keys a weight edit writes;
    `hook_points`: TransformerLens names a hook module sits at; `reason`: why (for explain)."""

    index: int
    intervention: Intervention
    kind: Kind
    reason: str
    tensors: tuple[str, ...] = ()
    hook_points: tuple[str, ...] = ()
    code: str | None = None  # refused: the E4xx code


@dataclass(frozen=True)
class Plan:
    """The whole lowering. `target` is the resolved backend (weights|hooks); `requested` what
    the user asked for. `untie`: the LM head must be written out as its own tensor."""

    requested: str
    target: str
    family: str
    lowerings: tuple[Lowering, ...]
    untie: bool = False
    json_guard: bool = False  # `enforce json`: custom_generate code ships with the checkpoint
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def weight_edits(self) -> tuple[Lowering, ...]:
        return tuple(lo for lo in self.lowerings if lo.kind == "weights")

    @property
    def hooks(self) -> tuple[Lowering, ...]:
        return tuple(lo for lo in self.lowerings if lo.kind == "hook")


def residual_slot(point: str) -> int | None:
    """`HookPoint.residual_slot` of a hook name (None for a name that is no hook point)."""
    p = HookPoint.read(point)
    return p.residual_slot if p else None


def _why_not_exact(iv: Intervention) -> str | None:
    if iv.op.reads_activation:
        return f"{iv.op.value} needs the feature's activation a_i(x), which only a hook can compute"
    if iv.condition is not None:
        return "a condition is evaluated per token, which only a hook can do"
    if iv.positions != "all":
        return f"position scope '{iv.positions}' needs the cache state, which only a hook sees"
    if iv.op == Op.PROJECT_OUT and not iv.everywhere:
        return ("project_out at one point is local; a weight edit would also change every later "
                "layer (add `everywhere` to remove the direction from the whole stream)")
    return None


def _classify_one(i: int, iv: Intervention, config, adapter) -> Lowering:
    why = _why_not_exact(iv)
    if why:
        return Lowering(i, iv, "hook", why, hook_points=iv.points)
    if not adapter.exact_residual_edits and not _embedding_add(iv, config, adapter):
        return Lowering(i, iv, "hook", f"{adapter.name} has a norm between each writer and the "
                        "residual add, so a residual edit is not a weight edit", hook_points=iv.points)
    if iv.op == Op.PROJECT_OUT:  # everywhere
        tensors = []
        for w in adapter.writers(config):
            tensors += [w.weight] + ([w.bias] if w.bias else [])
        tensors += [e.weight for e in adapter.embeddings(config)]
        return Lowering(i, iv, "weights", "orthogonalize every residual writer, its bias and the "
                        "embeddings: the stream never holds the direction", tensors=tuple(tensors))
    # ADD at every listed point, all positions, unconditional
    tensors = []
    for p in iv.points:
        slot = residual_slot(p)
        if slot is None:
            return Lowering(i, iv, "hook", f"add at {p} is read by the rest of its layer; only a "
                            "residual point folds into a bias", hook_points=iv.points)
        if slot == -1:
            emb = add_embedding(adapter, config)
            if emb is None:
                return Lowering(i, iv, "hook", "the embeddings are scaled in forward (sqrt(d)); an "
                                "add folded into them would be scaled and rounded", hook_points=iv.points)
            tensors.append(emb.weight)
            continue
        bs = adapter.bias_slot(slot, config)
        if bs is None:
            why = f": {adapter.why_no_bias_slot}" if adapter.why_no_bias_slot else ""
            return Lowering(i, iv, "hook", f"{adapter.name} has no bias slot after layer {slot}{why}",
                            hook_points=iv.points)
        tensors.append(bs.bias)
    return Lowering(i, iv, "weights", "add alpha*d_i to the bias of the last residual writer "
                    "(every token, exactly)", tensors=tuple(tensors))


def _embedding_add(iv: Intervention, config, adapter) -> bool:
    """An ADD that lands only before layer 0, where an unscaled embedding can take it (exact
    even with post-writer norms: nothing normalises the embedding before the stream)."""
    return (iv.op == Op.ADD and all(residual_slot(p) == -1 for p in iv.points)
            and add_embedding(adapter, config) is not None)


def add_embedding(adapter, config):
    """The embedding an add at resid_pre 0 folds into: an unscaled untied one first (GPT-2
    `wpe`), else the unscaled token embedding (untied on write); None if all are scaled."""
    embs = [e for e in adapter.embeddings(config) if not e.scale_by_sqrt_d]
    untied = [e for e in embs if e.tied_to is None]
    return (untied or embs or [None])[0]


# ---------------------------------------------------------------- passes (Plan -> Plan)

def classify(p: Plan, program: Program, config, adapter) -> Plan:
    """Per intervention, on its own: exact weight edit or hook (with why). Hook names are
    known to the family here: the validation pass refused others (E491/E492)."""
    if p.lowerings:
        return p
    los = tuple(_classify_one(i, iv, config, adapter) for i, iv in enumerate(program.interventions))
    return replace(p, lowerings=los)


def _reads(lo: Lowering) -> set[str]:
    """Hook points whose incoming activation a hook lowering reads."""
    iv = lo.intervention
    pts = set()
    if iv.op.reads_input:
        pts |= set(iv.points)
    if iv.condition is not None:
        pts.add(iv.condition.hook)
    return pts


def _same_point(a: str, b: str) -> bool:
    pa, pb = HookPoint.read(a), HookPoint.read(b)
    sa, sb = (pa.fold_slot if pa else None), (pb.fold_slot if pb else None)
    return a == b or (sa is not None and sa == sb)


def isolate_hook_points(p: Plan, program: Program, config, adapter) -> Plan:
    """Move weight edits to hooks where a hook would otherwise see them too early: an ADD
    folded at a point some hook reads, and `everywhere` projections once any hook exists
    (its delta must be projected too; then every ADD is hooked with it). Fixpoint. Under a
    target that runs no hooks (`weights`) none will exist, so only each rule's own
    exactness counts there."""
    if p.requested != "auto" and not TARGETS[p.requested].runs_hooks:
        return p
    los = list(p.lowerings)
    changed = True
    while changed:
        changed = False
        hooked = [lo for lo in los if lo.kind == "hook"]
        read = set().union(*(_reads(lo) for lo in hooked)) if hooked else set()
        any_everywhere_hook = any(lo.intervention.everywhere for lo in hooked)
        for k, lo in enumerate(los):
            if lo.kind != "weights":
                continue
            iv = lo.intervention
            why = None
            if iv.op == Op.PROJECT_OUT and hooked:
                why = ("other rules need hooks, and their deltas must be projected too: the "
                       "projection runs as a hook with them")
            elif iv.op == Op.ADD and any_everywhere_hook:
                why = "an everywhere projection runs as a hook, and it must see this add"
            elif iv.op == Op.ADD and any(_same_point(q, r) for q in iv.points for r in read):
                why = "a hook reads the activation at this point before any edit there"
            if why:
                los[k] = Lowering(lo.index, iv, "hook", why, hook_points=iv.points)
                changed = True
    return replace(p, lowerings=tuple(los))


def apply_target(p: Plan, program: Program, config, adapter) -> Plan:
    """Resolve `auto`, let the target refuse what it cannot express (one diagnostic per
    source rule: E410 for a hook under `weights`...), set `untie`."""
    exact = all(lo.kind == "weights" for lo in p.lowerings) and program.json is None
    target = p.requested if p.requested != "auto" else ("weights" if exact else "hooks")
    t = TARGETS[target]
    seen = {d.code for d in p.diagnostics}
    diags = list(p.diagnostics) + [d for d in t.program_refusals(program) if d.code not in seen]
    refused = []  # only the newly refused: the pass stays idempotent
    for lo in p.lowerings:
        why = t.refusal(lo) if lo.kind != "refused" else None
        if why is not None:
            refused.append((replace(lo, kind="refused", code=why.code), why))
    diags += _refusals(refused, t.expresses)
    by_index = {lo.index: lo for lo, _ in refused}
    los = tuple(by_index.get(lo.index, lo) for lo in p.lowerings)
    tied = {e.weight for e in adapter.embeddings(config) if e.tied_to}
    untie = any(set(lo.tensors) & tied for lo in los if lo.kind == "weights")
    return replace(p, target=target, lowerings=los, untie=untie, diagnostics=tuple(diags),
                   json_guard=program.json is not None)


def _refusals(refused: list, expresses: str) -> list[Diagnostic]:
    """One diagnostic per source rule and code (a rule over a feature set is one line, so
    one error), with the number of its features refused and each distinct reason."""
    out = []
    for g in group_by_rule(refused, key=lambda r: r[0].intervention):
        for code in dict.fromkeys(why.code for _, why in g.items):
            items = [(lo, why) for lo, why in g.items if why.code == code]
            reasons = "; ".join(dict.fromkeys(why.reason for _, why in items))
            n = f" ({counted(len(items), 'feature')})" if len(g) > 1 else ""
            out.append(Diagnostic(code, f"`{g.origin}`{n} cannot be lowered to {expresses}: "
                                  f"{reasons}", g.span, items[0][1].hint))
    return out


PASSES = (classify, isolate_hook_points, apply_target)


def plan(program: Program, config, adapter, target: str = "auto", *, check: bool = True) -> Plan:
    """Lower `program` for one model (`config`: transformers config; `adapter`: its family).

    With `check` (the default) a refusal raises DiagnosticError; `explain` passes
    check=False to show refused rules instead."""
    check_target(target)
    p = Plan(requested=target, target=target, family=adapter.name, lowerings=())
    for pass_ in PASSES:
        p = pass_(p, program, config, adapter)
    if check and any(d.is_error for d in p.diagnostics):
        raise DiagnosticError(list(p.diagnostics))
    return p
