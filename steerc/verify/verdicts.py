"""Per-feature verdicts of `steerc verify`: did each targeted feature move the way its rules say?

    v = judge(stats)            # -> Verdict(status, reason, spans)
    v.failed                    # moved the wrong way: `steerc verify` exits 1

Each rule's intent comes from its op (docs/verify.md "Verdicts"):

  suppress / clamp to 0 / ablate / scale by k < 1 / add < 0     down
  steer / amplify (add > 0) / scale by k > 1                    up
  clamp to v > 0                                                toward v

A rule is measurable when it acts where the feature is read (its SAE's hook point) or
upstream of it; a rule applied only downstream cannot move the reading, so its feature is
`not measurable` rather than judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from steerc.arch.hookpoint import HookPoint
from steerc.compiler.ir import Op

# A move the wrong way fails only beyond both tolerances: 5% of the base mean, and a floor
# of 0.1% of the feature's catalogue max activation (a mean move as large as firing at full
# strength on one more token in a thousand), so fp noise and a feature that barely fires
# never fail, whatever the scale of the SAE's activations (demo maxima run from 4 to 110).
# Without a catalogue max, the floor is 0.01 absolute.
REL_TOL = 0.05
MAX_FRACTION = 0.001
ABS_TOL = 0.01
SUPPRESS_DROP_PCT = 90.0  # a suppressed/ablated feature should lose >= 90% of its mean

OK, WEAK, FAILED, NOT_MEASURABLE, NA = "ok", "weak", "failed", "not measurable", "n/a"



def reads_after(point: str, hook: str) -> bool:
    """True when an edit at `point` can change what is read at `hook` (same point, or
    upstream in the residual stream, within the blocks); other names only match themselves."""
    if point == hook:
        return True
    p, h = HookPoint.read(point), HookPoint.read(hook)
    if not (p and h and _in_block_stream(p) and _in_block_stream(h)):
        return False
    return p < h


def _in_block_stream(p: HookPoint) -> bool:
    return p.layer is not None and p.residual_space


@dataclass(frozen=True)
class Verdict:
    """`status` is one of ok / weak / failed / not measurable / n/a; `spans` are the
    `file:line:col` of the rules judged (the rules to look at when it failed)."""

    status: str
    reason: str
    spans: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def floor(max_activation: float | None) -> float:
    """The smallest move that counts: 0.1% of the catalogue max activation, else 0.01."""
    if max_activation is None or not max_activation > 0:
        return ABS_TOL
    return MAX_FRACTION * max_activation


def tolerance(base_mean: float, max_activation: float | None = None) -> float:
    """How far a feature may move the wrong way before it fails."""
    return max(REL_TOL * abs(base_mean), floor(max_activation))


def judge(f) -> Verdict:
    """The verdict of one `FeatureStats` from its rules' intents."""
    rules = f.target.rules
    measurable = [r for r in rules if r.measurable]
    spans = tuple(dict.fromkeys(str(r.span) for r in (measurable or rules) if r.span))
    if rules and not measurable:
        return Verdict(NOT_MEASURABLE, "every rule acts downstream of the SAE's hook point", spans)
    intents = [(Op(r.op).intent(r.value), r.value) for r in measurable]
    wants = {(want, v if want == "toward" else None) for want, v in intents} - {(None, None)}
    if len(wants) != 1:
        return Verdict(NA, "no rule moves it" if not wants else "rules pull different ways", spans)
    [(want, v)] = wants
    b, s = f.base_mean, f.steered_mean
    tol, delta = tolerance(b, f.target.max_activation), s - b
    if want == "down":
        if delta > tol:
            return Verdict(FAILED, f"rose {b:.3g} -> {s:.3g} but its rules lower it", spans)
        if b == 0:
            return Verdict(NA, "never fired on the base model", spans)
        drop = -100.0 * delta / b
        suppress_only = all(r.op in (Op.SET.value, Op.PROJECT_OUT.value) for r in measurable)
        need = SUPPRESS_DROP_PCT if suppress_only else 0.0
        if drop >= need:
            return Verdict(OK, "", spans)
        return Verdict(WEAK, f"dropped {drop:.0f}% (want >= {need:.0f}%)" if delta < 0
                       else "did not drop", spans)
    if want == "up":
        if delta < -tol:
            return Verdict(FAILED, f"fell {b:.3g} -> {s:.3g} but its rules raise it", spans)
        if delta > 0:
            return Verdict(OK, "", spans)
        return Verdict(NA if b == 0 and s == 0 else WEAK, "did not rise", spans)
    d0, d1 = abs(b - v), abs(s - v)
    if d1 > d0 + tol:
        return Verdict(FAILED, f"moved away from {v:g}: {b:.3g} -> {s:.3g}", spans)
    if d1 < d0 or d1 <= tol:
        return Verdict(OK, "", spans)
    return Verdict(WEAK, f"did not move toward {v:g}", spans)
