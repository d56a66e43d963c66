"""The verify report: one frozen record, its JSON form (docs/verify.md) and a text table.

`Report.ok` is what `steerc verify` exits on: every expect passed and no targeted feature
moved the wrong way (verdict `failed`, steerc/verify/verdicts.py). `weak` features and KL
are reported but do not change the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass

from steerc.diagnostics import Diagnostic, render
from steerc.verify.blame import Blame, fmt
from steerc.verify.checks import ExpectResult
from steerc.verify.expectations import Figure, MeasuredResult
from steerc.verify.measure import KL, FeatureStats
from steerc.verify.verdicts import judge, tolerance

REPORT_VERSION = 4        # 4: per-rule blame of failing expectations (`expects[].blame`)
                          # 3: rate / kl / feature-change expects, the prompting baseline, tolerances
                          # 2: feature verdict `failed` fails the run; reason/where/rules per feature
TEXT_ROWS = 12            # features listed in the text report (all are in the JSON)
WORST_ROWS = 5            # failed features listed per rule in the text report


@dataclass(frozen=True)
class Report:
    checkpoint: str
    spec: str
    base_model: str
    target: str
    guard: bool
    prompts_source: str
    prompt_tokens: int
    neutral_source: str
    features: tuple[FeatureStats, ...]
    kl: KL
    expects: tuple[ExpectResult | MeasuredResult, ...]
    samples: tuple[dict, ...]
    warnings: tuple[str, ...] = ()
    baseline: str | None = None  # the spec's `baseline prompt`
    blame: tuple[Blame | None, ...] = ()  # per expect (None: not blamed); () when blame is off

    def blame_of(self, i: int) -> Blame | None:
        """The per-rule blame of `expects[i]`, None when it was not blamed."""
        return self.blame[i] if i < len(self.blame) else None

    @property
    def failed_features(self) -> tuple[FeatureStats, ...]:
        """Targeted features that moved the wrong way (verdict `failed`)."""
        return tuple(f for f in self.features if judge(f).failed)

    @property
    def ok(self) -> bool:
        return all(e.passed for e in self.expects) and not self.failed_features


def verdict(f: FeatureStats) -> str:
    """ok / weak / failed / not measurable / n/a (see docs/verify.md "Verdicts")."""
    return judge(f).status


def rule_failures(r: Report) -> list[dict]:
    """Per rule with a failed feature, in spec order: its span, text, how many features it
    targets, how many failed, and the failed ones, worst (largest wrong-way move) first."""
    by_rule: dict[str, dict] = {}
    for f in r.features:
        v = judge(f)
        for rule in f.target.rules:
            where = str(rule.span) if rule.span else "?"
            if where not in v.spans and v.spans:
                continue
            row = by_rule.setdefault(where, {"where": where, "rule": rule.origin, "targeted": 0,
                                             "failed": []})
            row["targeted"] += 1
            if v.failed:
                row["failed"].append(f)
    out = []
    for row in by_rule.values():
        if row["failed"]:
            row["failed"].sort(key=lambda f: -abs(f.steered_mean - f.base_mean))
            out.append(row)
    return out


def totals(features) -> dict:
    """Per direction (`down`, `up`): sum of the features' mean activations, base and
    steered, and its % change (one figure for a rule over a set of features)."""
    out = {}
    for d in ("down", "up"):
        fs = [f for f in features if f.target.direction == d]
        if fs:
            b, s = sum(f.base_mean for f in fs), sum(f.steered_mean for f in fs)
            out[d] = {"features": len(fs), "base_sum": b, "steered_sum": s,
                      "change_pct": None if b == 0 else 100.0 * (s - b) / b}
    return out


def _rule_diagnostic(x: dict) -> Diagnostic:
    """E540 at the rule whose features moved the wrong way (one per rule, not per feature)."""
    span = next((r.span for r in x["failed"][0].target.rules if str(r.span) == x["where"]), None)
    return Diagnostic("E540", f"{len(x['failed'])} of {x['targeted']} feature(s) this rule targets "
                      "moved the wrong way", span,
                      "another edit writing along these features' encoder rows (e.g. a steer on an "
                      "overlapping feature) or an SAE whose encoder and decoder rows disagree")


def feature_diagnostics(r: Report) -> list[Diagnostic]:
    """One E540 per rule with features that moved the wrong way, one E550 per failed
    expectation (for `--format` reports)."""
    return [_rule_diagnostic(x) for x in rule_failures(r)] + expect_diagnostics(r)


def expect_diagnostics(r: Report) -> list[Diagnostic]:
    """E550 at each failed expectation, with what was measured."""
    out = []
    for i, e in enumerate(r.expects):
        if e.passed:
            continue
        if isinstance(e, MeasuredResult):
            what = f"{e.steered.detail} on {e.source}"
        else:
            what = f"the steered continuation {e.steered.detail}"
        out.append(Diagnostic("E550", f"expectation failed: {what}", e.expect.span,
                              _blame_hint(r.blame_of(i))
                              or "see the report for the base (and prompted base) figures"))
    return out


def _blame_hint(b: Blame | None) -> str | None:
    """The rule that moved a failed expectation most, for its E550 (CI annotations)."""
    top = None if b is None or b.top is None else next((x for x in b.rules if x.span == b.top), None)
    return None if top is None else f"blame: `{_short(top.rule, 60)}` at {top.span}: {top.verdict}"


def _feature_json(f: FeatureStats) -> dict:
    t, v = f.target, judge(f)
    return {"sae": t.feature.sae, "index": t.feature.index, "label": t.feature.label,
            "hook": t.hook, "ops": list(t.ops), "direction": t.direction,
            "base": {"mean": f.base_mean, "max": f.base_max, "active_fraction": f.base_active},
            "steered": {"mean": f.steered_mean, "max": f.steered_max,
                        "active_fraction": f.steered_active},
            "change_pct": f.change_pct, "max_activation": t.max_activation,
            "tolerance": tolerance(f.base_mean, t.max_activation),
            "verdict": v.status, "reason": v.reason,
            "where": v.spans[0] if v.spans else None,
            "rules": [{"where": str(r.span) if r.span else None, "rule": r.origin,
                       "op": f"{r.op}={r.value:g}", "measurable": r.measurable} for r in t.rules]}


def _figure_json(f: Figure | None) -> dict | None:
    return None if f is None else {"value": f.value, "passed": f.passed, "detail": f.detail}


def _blame_json(b: Blame | None) -> dict | None:
    if b is None:
        return None
    return {"rules": [{"where": str(r.span) if r.span else None, "rule": r.rule,
                       "interventions": r.interventions, "without": _figure_json(r.without),
                       "alone": _figure_json(r.alone), "effect": r.effect, "moved": r.moved, "flips": r.flips,
                       "verdict": r.verdict} for r in b.rules],
            "skipped": b.skipped, "top": str(b.top) if b.top else None, "note": b.note}


def _expect_json(e: ExpectResult | MeasuredResult, blame: Blame | None = None) -> dict:
    x = e.expect
    head = {"line": e.line, "prompt": x.prompt, "kind": x.kind, "arg": x.arg,
            "where": str(x.span) if x.span else None, "passed": e.passed, "guarded": e.guarded,
            "blame": _blame_json(blame)}
    if isinstance(e, MeasuredResult):
        return {**head, "prompt": None, "percent": x.percent, "bound": x.bound,
                "features": [[f.sae, f.index] for f in x.features],
                "texts": {"source": e.source, "count": e.count,
                          "unit": "prompts" if x.kind not in ("kl_below", "down", "up") else "tokens"},
                "unit": e.unit, "steered": _figure_json(e.steered), "base": _figure_json(e.base),
                "prompted": _figure_json(e.prompted), "failures": list(e.failures)}
    prompted = None if e.prompted is None else {
        "text": e.prompted_text, "passed": e.prompted.passed, "detail": e.prompted.detail}
    return {**head,
            "steered": {"text": e.steered_text, "passed": e.steered.passed, "detail": e.steered.detail},
            "base": {"text": e.base_text, "passed": e.base.passed, "detail": e.base.detail},
            "prompted": prompted}


def to_json(r: Report) -> dict:
    """The `--json` document (schema in docs/verify.md)."""
    return {
        "version": REPORT_VERSION, "ok": r.ok, "checkpoint": r.checkpoint, "spec": r.spec,
        "base_model": r.base_model, "target": r.target, "json_guard": r.guard,
        "prompts": {"source": r.prompts_source, "tokens": r.prompt_tokens},
        "features": [_feature_json(f) for f in r.features],
        "totals": totals(r.features),
        "failed_features": len(r.failed_features),
        "rule_failures": [{"where": x["where"], "rule": x["rule"], "targeted": x["targeted"],
                           "failed": len(x["failed"]),
                           "features": [[f.target.feature.sae, f.target.feature.index]
                                        for f in x["failed"]]} for x in rule_failures(r)],
        "kl": {"source": r.neutral_source, "mean": r.kl.mean, "p95": r.kl.p95, "max": r.kl.max,
               "tokens": r.kl.n_tokens},
        "baseline": r.baseline,
        "expects": [_expect_json(e, r.blame_of(i)) for i, e in enumerate(r.expects)],
        "samples": list(r.samples),
        "warnings": list(r.warnings),
    }


def _short(text: str, n: int = 70) -> str:
    t = text.replace("\n", "\\n")
    return t if len(t) <= n else t[:n - 3] + "..."


def _pct(p: float | None) -> str:
    return "n/a" if p is None else f"{p:+.1f}%"


def _value(f: Figure | None, unit: str, signed: bool) -> str:
    if f is None or f.value is None:
        return "n/a"
    if unit == "nats/token":
        return f"{f.value:.4f}"
    return f"{f.value:+.1f}%" if signed else f"{f.value:.1f}%"


def render_expects(r: Report) -> list[str]:
    """The expectations section: one block per expect, base / prompted base / steered."""
    out = ["Expectations (judged on the steered model" + (
        f"; prompted = the base model with the baseline prompt {_short(repr(r.baseline), 40)} first"
        if r.baseline is not None else "") + "):"]
    for i, e in enumerate(r.expects):
        out.append(f"  {'PASS' if e.passed else 'FAIL'}  {e.line}"
                   + (f"   [{e.expect.span}]" if e.expect.span else ""))
        if isinstance(e, MeasuredResult):
            kind = e.expect.kind
            what = ("KL(base || model)" if kind == "kl_below" else "rate" if e.base is not None
                    else "change vs base")
            out.append(f"        on {e.source} ({e.count} {'prompts' if e.base is not None else 'tokens'}); {what}:")
            rows = [("base", e.base), ("prompted", e.prompted), ("steered", e.steered)]
            for name, f in rows:
                if f is None and name != "steered":
                    continue
                out.append(f"        {name + ':':<10}{_value(f, e.unit, kind in ('down', 'up')):>9}   {f.detail}")
            for x in e.failures[:3]:
                out.append(f"        e.g. {_short(repr(x['prompt']), 40)} -> "
                           f"{_short(repr(x['steered']), 50)}  ({x['detail']})")
            out += blame_lines(e, r.blame_of(i))
            continue
        out.append(f"        steered:  {_short(repr(e.steered_text), 90)}  -> {e.steered.detail}")
        out.append(f"        base:     {_short(repr(e.base_text), 90)}  -> {e.base.detail}")
        if e.prompted is not None:
            out.append(f"        prompted: {_short(repr(e.prompted_text), 90)}  -> {e.prompted.detail}")
        out += blame_lines(e, r.blame_of(i))
    for d in expect_diagnostics(r):
        out.append(render(d))
    return out


def blame_lines(e: ExpectResult | MeasuredResult, b: Blame | None) -> list[str]:
    """The blame of one expectation (text report): per rule the expectation's figure with the
    rule left out and with it alone, and the verdict; `*` marks the rule that moved it most."""
    if b is None:
        return []
    if not b.rules or b.rules[0].without is None:
        return [f"        blame: {b.note}" + (f" ({b.rules[0].span}: {_short(b.rules[0].rule, 60)})"
                                                       if b.rules else "")]
    out = ["        blame (the expectation re-measured with each rule left out, and alone):"]
    for x in b.rules:
        mark = "*" if b.top is not None and x.span == b.top else " "
        out.append(f"        {mark} {x.span or '?'}  {_short(x.rule, 60)}")
        out.append(f"            without: {_blame_value(e, x.without)}  alone: {_blame_value(e, x.alone)}"
                   f"  -> {x.verdict}")
    if b.skipped:
        out.append(f"          ... {b.skipped} more rule(s) not blamed (--blame-rules N raises the cap)")
    return out


def _blame_value(e, f: Figure | None) -> str:
    if f is None:
        return "n/a"
    if f.value is None:
        return "pass" if f.passed else "FAIL"
    return fmt(e, f.value) + ("" if f.passed else " FAIL")


def render_text(r: Report) -> str:
    """The human-readable report (plain text, fixed-width columns)."""
    out = [f"steerc verify {r.checkpoint}  (spec {r.spec}, target {r.target}"
           + (", JSON guard" if r.guard else "") + ")",
           f"base model {r.base_model}", ""]
    out.append(f"Targeted features: activation at the hook point, {r.prompt_tokens} tokens of "
               f"{r.prompts_source}")
    if r.features:
        rows = [("feature", "ops", "base mean", "base max", "steered mean", "steered max",
                 "change", "verdict")]
        shown = sorted(r.features, key=lambda f: -f.base_mean)[:TEXT_ROWS]
        for f in shown:
            t = f.target
            name = t.feature.ref + (f" {t.feature.label}" if t.feature.label else "")
            rows.append((_short(name, 34), _short(",".join(t.ops), 22), f"{f.base_mean:.3f}",
                         f"{f.base_max:.3f}", f"{f.steered_mean:.3f}", f"{f.steered_max:.3f}",
                         _pct(f.change_pct), verdict(f)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            out.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                         for i, (c, w) in enumerate(zip(row, widths))))
        if len(r.features) > len(shown):
            out.append(f"  ... {len(r.features) - len(shown)} more features (highest base mean "
                       "shown; all in --json)")
        for d, t in totals(r.features).items():
            out.append(f"  all {t['features']} '{d}' features: summed mean {t['base_sum']:.3f} -> "
                       f"{t['steered_sum']:.3f} ({_pct(t['change_pct'])})")
        failures = rule_failures(r)
        if failures:
            out += ["", f"FAILED features: {len(r.failed_features)} targeted feature(s) moved the "
                    "wrong way (beyond 5% of the base mean and 0.1% of its max activation):"]
            for x in failures:
                out.append(render(_rule_diagnostic(x)))
                for f in x["failed"][:WORST_ROWS]:
                    t = f.target
                    name = t.feature.ref + (f" {t.feature.label}" if t.feature.label else "")
                    out.append(f"    {_short(name, 34)} ({_pct(f.change_pct)}): {judge(f).reason}")
                if len(x["failed"]) > WORST_ROWS:
                    out.append(f"    ... {len(x['failed']) - WORST_ROWS} more (all in --json)")
    else:
        out.append("  (the spec has no feature rules)")
    out += ["", f"KL(base || steered) on neutral text ({r.neutral_source}): mean {r.kl.mean:.4f} "
            f"nats/token, p95 {r.kl.p95:.4f}, max {r.kl.max:.4f} over {r.kl.n_tokens} tokens", ""]
    if r.expects:
        out += render_expects(r)
    else:
        out.append("Expectations: none in the spec")
    if r.samples:
        out += ["", "Sample generations (greedy):"]
        for s in r.samples:
            out.append(f"  prompt:  {_short(repr(s['prompt']), 90)}")
            out.append(f"    base:    {_short(repr(s['base']), 90)}")
            out.append(f"    steered: {_short(repr(s['steered']), 90)}")
    for w in r.warnings:
        out.append(f"warning: {w}")
    n_fail = sum(not e.passed for e in r.expects)
    n_feat = len(r.failed_features)
    out += ["", f"result: {'OK' if r.ok else 'FAILED'} ({len(r.expects) - n_fail}/{len(r.expects)} "
            "expectations passed" + (f"; {n_feat} targeted feature(s) moved the wrong way" if n_feat
                                     else "") + ")"]
    return "\n".join(out)
