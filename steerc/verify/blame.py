"""Per-rule blame: which rules of the spec moved an expectation (docs/verify.md "Blame").

    rules = spec_rules(program, guard=True)
    blames = blame_expects(setup, results, mode="failing", max_rules=8)   # Blame | None each

A rule is one statement of the spec: its interventions grouped by span and text
(`rulegroups.group_by_rule`), so a `when` block's rules are rules of their own, and
`enforce json` is one rule that also owns the decode-time guard. The spec's `baseline prompt`
is not a rule, and blame measures without it (the prompted figure is the report's).

For each blamed expectation and rule, the expectation is measured again on a copy of the base
model with part of the program applied in process (`steerc.runtime.apply`, the reference
semantics every checkpoint is tested against): once with the rule left out, once with the rule
alone. The measuring is verify's own (`checks.run_expects`, `expectations.run_measured`); a
set of rules is measured once for every blamed expectation (with two rules, "without A" is
"B alone"), and the base model's continuations of a rate's prompts are reused from verify's
own run.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from steerc.compiler.ir import ExpectCheck, Intervention, JsonConstraint, Program
from steerc.compiler.rulegroups import group_by_rule
from steerc.diagnostics import Span
from steerc.verify import checks, expectations, measure
from steerc.verify.checks import ExpectResult
from steerc.verify.expectations import Defaults, Figure, MeasuredResult

MODES = ("off", "failing", "all")
MAX_RULES = 8          # rules blamed per run by default (`--blame-rules`); the rest are counted
KL_TOL = 1e-4          # nats/token: a smaller KL move is float noise, "no effect"
CHANGE_TOL = 0.1       # percentage points of a feature-set change
REL_TOL = 0.01         # ... or 1% of the larger figure
TEXT_SHOWN = 60        # characters of a continuation in a single-prompt figure


@dataclass(frozen=True)
class Rule:
    """One statement of the spec: where it is, as written, its interventions, and whether
    it is the `enforce json` that owns the decode-time guard."""

    span: Span | None
    text: str
    interventions: tuple[Intervention, ...]
    guard: bool = False


@dataclass(frozen=True)
class RuleBlame:
    """One rule's part in one expectation: the figure without it and with it alone (None:
    not re-measured), the move it makes (steered - without, the expectation's unit; None for
    a pass/fail check or a figure that cannot be measured), whether leaving it out changes
    the figure beyond noise (`moved`) or flips the outcome, and a one-line verdict."""

    span: Span | None
    rule: str
    interventions: int
    without: Figure | None
    alone: Figure | None
    effect: float | None
    moved: bool
    flips: bool
    verdict: str


@dataclass(frozen=True)
class Blame:
    """The rules of one expectation, in spec order; `skipped` rules were over the cap and
    not measured; `top` is the rule whose removal changes the figure most (one that flips the
    outcome first), None when none changes it."""

    rules: tuple[RuleBlame, ...]
    skipped: int
    top: Span | None
    note: str = ""


@dataclass(frozen=True)
class Setup:
    """What blame measures with: verify's models, SAEs, prompt files, text sets and budgets."""

    program: Program
    base: object
    tok: object
    saes: dict
    files: dict
    defaults: Defaults
    ck_dir: Path
    guard: bool
    max_new_tokens: int
    window: int
    max_windows: int
    cache: dict  # the base model's continuations, shared with verify's own run


def check_options(mode: str, max_rules: int) -> None:
    """E570 for a blame mode other than off / failing / all, or a rule cap below 1."""
    from steerc.diagnostics import Diagnostic, DiagnosticError

    if mode not in MODES:
        raise DiagnosticError([Diagnostic("E570", f"blame must be one of {', '.join(MODES)}, not {mode!r}",
                                          None, "failing (the default) blames failing expectations only")])
    if isinstance(max_rules, bool) or not isinstance(max_rules, int) or max_rules < 1:
        raise DiagnosticError([Diagnostic("E570", f"blame_rules must be a whole number >= 1, not {max_rules!r}",
                                          None, "blame='off' turns blame off")])


def spec_rules(program: Program, *, guard: bool) -> tuple[Rule, ...]:
    """The spec's rules in program order; with `guard` the `enforce json` rule owns the
    guard (a rule of its own when it lowered to no intervention)."""
    json_c = program.json if guard else None
    rules = [Rule(g.span, g.origin, g.items, json_c is not None and g.span == json_c.span)
             for g in group_by_rule(program.interventions)]
    if json_c is not None and not any(r.guard for r in rules):
        rules.append(Rule(json_c.span, _enforce_text(json_c), (), True))
    return tuple(rules)


def _enforce_text(c: JsonConstraint) -> str:
    return "enforce json format" if c.schema_path is None else f'enforce json schema "{c.schema_path}"'


def blame_expects(setup: Setup, results, *, mode: str = "failing",
                  max_rules: int = MAX_RULES) -> tuple[Blame | None, ...]:
    """One `Blame` per result (None where not blamed): the failing ones (`mode` "failing"),
    all (`"all"`) or none (`"off"`)."""
    results = list(results)
    todo = [i for i, r in enumerate(results) if mode == "all" or (mode == "failing" and not r.passed)]
    out: list[Blame | None] = [None] * len(results)
    if not todo:
        return tuple(out)
    rules = spec_rules(setup.program, guard=setup.guard)
    if len(rules) < 2:
        for i in todo:
            out[i] = _trivial(rules)
        return tuple(out)
    blamed = list(range(min(len(rules), max_rules)))
    variants = {frozenset(set(range(len(rules))) - {k}) for k in blamed} | {frozenset({k}) for k in blamed}
    expects = [results[i] for i in todo]
    figures = _Measurer(setup, rules).all(sorted(variants, key=sorted), expects)
    everything = frozenset(range(len(rules)))
    for i, res in zip(todo, expects):
        rows = [_row(rules[k], res, figures[(everything - {k}, id(res))], figures[(frozenset({k}), id(res))])
                for k in blamed]
        out[i] = Blame(tuple(rows), len(rules) - len(blamed), _top(rows))
    return tuple(out)


def _trivial(rules: tuple[Rule, ...]) -> Blame:
    if not rules:
        return Blame((), 0, None, "the spec has no rules: the steered model is the base model")
    r = rules[0]
    row = RuleBlame(r.span, r.text, len(r.interventions), None, None, None, True, False,
                    "the spec's only rule: the steered figure is this rule alone (not re-measured)")
    return Blame((row,), 0, r.span, "the spec has one rule: it is that rule")


class _Measurer:
    """Measures expectations on the base model's copy with a set of rules applied."""

    def __init__(self, setup: Setup, rules: tuple[Rule, ...]):
        self.s, self.rules = setup, rules
        self.model = copy.deepcopy(setup.base)  # the base stays unsteered: KL and changes read it
        self.model.eval()

    def all(self, variants, results) -> dict:
        """(variant, id(result)) -> (Figure, continuation or None) for every variant and result."""
        out = {}
        for v in variants:
            for res, fig in zip(results, self.measure(v, results)):
                out[(v, id(res))] = fig
        return out

    def measure(self, variant: frozenset, results) -> list[tuple[Figure, str | None]]:
        """Each result's expectation on the base model steered by the rules in `variant`."""
        from steerc.runtime import apply

        chosen = [self.rules[k] for k in sorted(variant)]
        ivs = {id(iv) for r in chosen for iv in r.interventions}
        subset = [iv for iv in self.s.program.interventions if id(iv) in ivs]  # program order
        guarded = any(r.guard for r in chosen)
        steer = apply(self.model, self.s.program, self.s.saes, interventions=subset) if subset else nullcontext()
        with steer, _guard(self.model, self.s.tok, self.s.program.json) if guarded else nullcontext():
            return self._figures(results, guarded)

    def _figures(self, results, guarded: bool) -> list[tuple[Figure, str | None]]:
        s = self.s
        # without the baseline prompt: it is not a rule, and its figure is already reported
        plain = [replace(r.expect, baseline=None) for r in results]
        single = [e for e, r in zip(plain, results) if isinstance(r, ExpectResult)]
        rest = [e for e, r in zip(plain, results) if isinstance(r, MeasuredResult)]
        got_single = iter(checks.run_expects(replace(s.program, expects=tuple(single)), s.base, self.model,
                                             s.tok, s.ck_dir, guard=guarded, max_new_tokens=s.max_new_tokens,
                                             base_cache=s.cache))
        defaults = s.defaults
        if any(e.kind == "kl_below" and not e.texts for e in rest):  # verify's KL is the checkpoint's
            defaults = replace(defaults, kl=measure.next_token_kl(s.base, self.model, defaults.neutral_windows))
        got_rest = iter(expectations.run_measured(
            replace(s.program, expects=tuple(rest)), s.base, self.model, s.tok, s.saes, s.files, defaults,
            s.ck_dir, guard=guarded, max_new_tokens=s.max_new_tokens, window=s.window,
            max_windows=s.max_windows, base_cache=s.cache))
        out = []
        for r in results:
            if isinstance(r, ExpectResult):
                x = next(got_single)
                out.append((Figure(None, x.steered.passed, f"{x.steered.detail}: {_short(x.steered_text)}"),
                            x.steered_text))
            else:
                out.append((next(got_rest).steered, None))
        return out


@contextmanager
def _guard(model, tok, constraint: JsonConstraint | None):
    """`model.generate` with the JSON guard last among its logits processors, as the
    checkpoint's shipped `custom_generate` runs it (same processor class and grammar)."""
    import transformers

    from steerc.guard import GuardFactory

    gc, cfg = model.generation_config, model.config
    eos = gc.eos_token_id if gc.eos_token_id is not None else cfg.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    factory = GuardFactory(tok, None if constraint is None else constraint.schema,
                           vocab_size=text_cfg.vocab_size, eos_token_ids=eos or None)

    def generate(*args, tokenizer=None, **kwargs):
        procs = transformers.LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
        procs.append(factory.processor(kwargs.get("max_new_tokens")))
        kwargs.setdefault("eos_token_id", factory.eos_token_ids)
        return transformers.GenerationMixin.generate(model, *args, logits_processor=procs, **kwargs)

    model.generate = generate
    try:
        yield model
    finally:
        del model.generate


# --- verdicts ------------------------------------------------------------------------------


def _short(text: str) -> str:
    t = repr(text)
    return t if len(t) <= TEXT_SHOWN else t[:TEXT_SHOWN - 3] + "..."


def _what(e: ExpectCheck, res) -> str:
    if e.kind == "kl_below":
        return "KL"
    if e.kind in ("down", "up"):
        return "the change"
    return "the pass rate" if isinstance(res, MeasuredResult) else "the check"


def fmt(res, value: float | None) -> str:
    """A figure of `res`'s expectation as the report writes it: 0.0312 (KL), 58.8% (rate),
    -94.5% (change), n/a."""
    if value is None:
        return "n/a"
    kind = res.expect.kind
    if kind == "kl_below":
        return f"{value:.4f}"
    return f"{value:+.1f}%" if kind in ("down", "up") else f"{value:.1f}%"


def _tolerance(kind: str, a: float, b: float) -> float:
    if kind == "kl_below":
        return max(KL_TOL, REL_TOL * max(abs(a), abs(b)))
    if kind in ("down", "up"):
        return max(CHANGE_TOL, REL_TOL * max(abs(a), abs(b)))
    return 1e-9  # a rate moves in whole prompts: any move counts


def _reference(res) -> float | None:
    """The figure with no rule at all: the base model's rate, no KL, no change."""
    if res.expect.kind == "kl_below":
        return 0.0
    if res.expect.kind in ("down", "up"):
        return 0.0
    return res.base.value if isinstance(res, MeasuredResult) and res.base is not None else None


def _row(rule: Rule, res, without_: tuple[Figure, str | None], alone_: tuple[Figure, str | None]) -> RuleBlame:
    (without, text), (alone, _) = without_, alone_
    passed = res.passed
    flips = without.passed != passed
    outcome = ("removing it makes the expectation pass" if not passed else
               "removing it makes the expectation fail")
    n = len(rule.interventions)
    if isinstance(res, ExpectResult):
        moved = flips or text != res.steered_text
        if flips:
            verdict = outcome
        elif moved:
            verdict = f"changes the continuation; the expectation still {'passes' if passed else 'fails'} without it"
        elif alone.passed != res.base.passed:
            verdict = f"leaving it out changes nothing; alone it {'passes' if alone.passed else 'fails'}"
        else:
            verdict = "no effect"
        return RuleBlame(rule.span, rule.text, n, without, alone, None, moved, flips, verdict)
    kind, what = res.expect.kind, _what(res.expect, res)
    full, w = res.steered.value, without.value
    effect = None if full is None or w is None else full - w
    moved = flips or (effect is not None and abs(effect) > _tolerance(kind, full, w))
    if moved and effect is not None:
        verdict = f"this rule moved {what} from {fmt(res, w)} to {fmt(res, full)}"
        verdict += f"; {outcome}" if flips else ""
    elif flips:
        verdict = outcome
    else:
        ref, a = _reference(res), alone.value
        if ref is not None and a is not None and abs(a - ref) > _tolerance(kind, a, ref):
            verdict = f"leaving it out changes nothing; alone it moves {what} from {fmt(res, ref)} to {fmt(res, a)}"
        else:
            verdict = "no effect"
    return RuleBlame(rule.span, rule.text, n, without, alone, effect, moved, flips, verdict)


def _top(rows: list[RuleBlame]) -> Span | None:
    moving = [r for r in rows if r.moved]
    return max(moving, key=lambda r: (r.flips, abs(r.effect or 0.0))).span if moving else None


__all__ = ["Blame", "MAX_RULES", "MODES", "Rule", "RuleBlame", "Setup", "blame_expects", "check_options", "fmt",
           "spec_rules"]
