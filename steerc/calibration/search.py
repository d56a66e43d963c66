"""The search: measure a spec's expectations at each strength t, in process, on the base model.

    curve = search(program, spec_dir, grid, opts, progress=True)

`program` is resolved with t = 1, so an `auto` intervention's value is its unit; at t it is
t times that, the same float resolve computes from a lock holding t (compile's values are
the measured ones, bit for bit). The steered model is a second copy of the base with
`steerc.runtime.apply` hooks: the reference semantics every compiled target is tested
against, so nothing is compiled to search. Each point runs what `steerc verify` runs on a
checkpoint (`steerc.verify.run.measure_expects`); the base model's generations are made once.

The decode-time guard of `enforce json` is not run while searching (the latent edits are).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from steerc.calibration.curve import Curve, Outcome, Point, RuleValue, choose
from steerc.compiler.ir import Calibrated, Op, Program
from steerc.compiler.rulegroups import group_by_rule
from steerc.verify import expectations, texts
from steerc.verify.run import Options, measure_expects, text_windows


def at_strength(program: Program, t: float) -> Program:
    """`program` (resolved at t = 1) with its `auto` interventions at strength t."""
    cal = program.calibrated
    ivs = tuple(replace(iv, value=iv.value * t) if iv.origin in cal.rules else iv
                for iv in program.interventions)
    return replace(program, interventions=ivs, calibrated=Calibrated(float(t), cal.rules))


def _values(program: Program) -> tuple[RuleValue, ...]:
    rows = []
    for g in group_by_rule([iv for iv in program.interventions if iv.origin in program.calibrated.rules]):
        vals = [iv.value for iv in g.items]
        unit = ("1" if g.items[0].op is Op.SCALE else
                "1 vector" if all(iv.feature.direction for iv in g.items) else "max_activation")
        rows.append(RuleValue(g.origin, str(g.span) if g.span else None, unit, min(vals), max(vals)))
    return tuple(rows)


def shortfall(e, value: float | None, passed: bool) -> float:
    """How far a figure is from its bound, relative to the bound (0 when it passes; 1 for a
    failed check of one continuation or a figure that could not be measured)."""
    if passed:
        return 0.0
    if value is None:
        return 1.0
    if e.kind == "kl_below":
        return (value - e.bound) / e.bound
    if e.kind == "down":
        return (value + e.percent) / e.percent      # value is the change in %, need <= -percent
    return max(e.percent - value, 0.0) / e.percent  # rates and `up`: need >= percent


def _outcome(r) -> Outcome:
    where = str(r.expect.span) if r.expect.span else None
    if isinstance(r, expectations.MeasuredResult):
        return Outcome(r.line, where, r.passed, r.steered.value, r.unit, r.steered.detail,
                       shortfall(r.expect, r.steered.value, r.passed))
    return Outcome(r.line, where, r.passed, None, "", r.steered.detail, shortfall(r.expect, None, r.passed))


def search(program: Program, spec: str, lock: Path, grid: tuple[float, ...], opts: Options = Options(),
           *, progress: bool = False) -> Curve:
    """Measure every expectation of `program` at each t of `grid` (ascending) and choose."""
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from steerc.hfload import load_model, load_tokenizer
    from steerc.runtime import apply
    from steerc.compiler.build_checkpoint import load_saes

    torch.manual_seed(0)
    hf_logging.set_verbosity_error()  # long neutral documents are cut into windows, as verify does
    spec_dir = Path(os.path.dirname(os.path.abspath(spec)))
    files = expectations.load_prompt_files(program, spec_dir)  # before any model loads
    base_dir = Path(program.model)
    pset, nset = texts.prompt_set(None, base_dir), texts.neutral_set(None, base_dir)
    base, steered, tok = load_model(base_dir), load_model(base_dir), load_tokenizer(base_dir)
    saes = load_saes(program, allow_pickle=opts.allow_pickle)  # named directions too
    tw = text_windows(program, pset, nset, base, tok, opts)
    kl_expect = next(e for e in program.expects if e.kind == "kl_below")  # resolve: E281
    base_cache: dict = {}
    points = []
    for t in tqdm(grid, desc="calibrate", unit="t", disable=not progress):
        p = at_strength(program, t)
        with apply(steered, p, saes):
            _, results = measure_expects(p, base, steered, tok, saes, files, tw, spec_dir,
                                         guard=False, opts=opts, base_cache=base_cache)
        kl = next(r for r in results if r.expect is kl_expect).steered.value
        points.append(Point(float(t), _values(p), float(kl), tuple(_outcome(r) for r in results)))
    source = next(r for r in results if r.expect is kl_expect).source
    return Curve(spec, lock, source, tuple(points), choose(points))
