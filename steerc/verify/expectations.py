"""Measured expectations: rates over a prompt file, KL on text, a feature set's change.

    files = load_prompt_files(program, ck_dir)      # before any model loads: E551, E552
    results = run_measured(program, models, files, defaults, guard=..., max_new_tokens=48)

  expect at least N% of "f" CHECK      every prompt of f is continued greedily by the steered
                                       model; passes when >= N% of the continuations pass CHECK
                                       (the base model's rate is shown beside it)
  expect kl [on "f"] below B           mean next-token KL(base || steered), nats per token, on
                                       f's prompts (else verify's neutral text) < B
  expect T down|up by at least N% [on "f"]
                                       summed mean activation of T's features at their hook
                                       points on f's prompts (else verify's prompt set):
                                       (steered - base) / base <= -N% (down) or >= N% (up)

With a `baseline prompt`, each is also measured on the base model with that text prepended
(the `prompted` figure): a prompt's rate, the KL a prompt costs on the same next tokens, the
change a prompt makes to the features. Judged on the steered model only; the others are
there to compare (docs/verify.md "Prompting baseline").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from steerc.compiler.ir import ExpectCheck, Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import prompts as prompt_files
from steerc.verify import measure, texts
from steerc.verify.capture import content_mask
from steerc.verify.checks import JUDGED, check_text, expect_line, generate_many, judge, load_schema

FAILURES_SHOWN = 5  # failing prompts kept per rate expectation (report and JSON)


@dataclass(frozen=True)
class Figure:
    """One model's figure for an expectation, in the result's unit, and whether it meets it."""

    value: float | None
    passed: bool
    detail: str


@dataclass(frozen=True)
class MeasuredResult:
    """One measured expectation: what it was measured on and each model's figure."""

    expect: ExpectCheck
    source: str                # the prompt file or verify's text set
    count: int                 # prompts (rate) or tokens (kl, down/up)
    unit: str                  # "%" or "nats/token"
    steered: Figure
    base: Figure | None        # rate: the base model's rate (kl, down/up compare against base)
    prompted: Figure | None    # the base model with the baseline prompt prepended
    failures: tuple[dict, ...] = ()   # rate: the first prompts whose steered continuation failed
    guarded: bool = False

    @property
    def passed(self) -> bool:
        return self.steered.passed

    @property
    def line(self) -> str:
        """The expect as written, its file named as seen from the working directory."""
        return expect_line(replace(self.expect, texts=self.source) if self.expect.texts else self.expect)


@dataclass(frozen=True)
class Defaults:
    """Verify's own text sets, for expectations that name no file: prompt windows + mask
    (feature changes) and neutral windows with their KL (kl)."""

    prompts_source: str
    prompt_windows: torch.Tensor
    prompt_mask: torch.Tensor
    neutral_source: str
    neutral_windows: torch.Tensor
    kl: measure.KL


def load_prompt_files(program: Program, ck_dir: Path) -> dict[str, prompt_files.PromptFile]:
    """Every prompt file the expects name (recorded path -> file), read and checked against
    the hash taken at compile time: E551 when missing or unreadable, E552 when changed."""
    from steerc.verify.checkpoint import resolve_path

    out: dict[str, prompt_files.PromptFile] = {}
    for e in program.expects:
        if not e.texts or e.texts in out:
            continue
        p = resolve_path(e.texts, ck_dir)
        if p is None or not os.path.isfile(p):
            raise DiagnosticError([Diagnostic(
                "E551", f"prompt file '{e.texts}' of `{expect_line(e)}` not found", e.span,
                "the manifest records it relative to the checkpoint: keep the checkpoint where it "
                "was compiled relative to its inputs")])
        pf = prompt_files.read_prompts(p, prompt_files.VERIFY_KIND, e.span)
        if e.texts_sha256 and pf.sha256 != e.texts_sha256:
            raise DiagnosticError([Diagnostic(
                "E552", f"prompt file '{p}' changed since the checkpoint was compiled (sha256 "
                f"{e.texts_sha256[:12]} -> {pf.sha256[:12]})", e.span,
                "recompile, so the expectation, the lock and the figures are about the same prompts")])
        out[e.texts] = replace(pf, path=os.path.relpath(p))  # as seen from the working directory
    return out


class _Runner:
    """Generations batched per expectation and cached per (model, prompt): a prompt in two
    expectations runs once."""

    def __init__(self, base, steered, tok, saes, files, defaults: Defaults, *, guard: bool,
                 max_new_tokens: int, window: int, max_windows: int, base_cache: dict | None = None):
        self.base, self.steered, self.tok, self.saes = base, steered, tok, saes
        self.files, self.defaults, self.guard = files, defaults, guard
        self.max_new_tokens, self.window, self.max_windows = max_new_tokens, window, max_windows
        self.cache: dict[tuple[str, str], str] = {}
        self.base_cache = {} if base_cache is None else base_cache  # may outlive this runner

    def gen(self, which: str, prompts: list[str]) -> list[str]:
        """Continuations of `prompts` by the steered or base model, batched, each once."""
        store = self.base_cache if which == "base" else self.cache
        key = (lambda p: ("many", p)) if which == "base" else (lambda p: (which, p))
        todo = list(dict.fromkeys(p for p in prompts if key(p) not in store))
        if todo:
            model = self.steered if which == "steered" else self.base
            for p, text in zip(todo, generate_many(model, self.tok, todo, self.max_new_tokens,
                                                   self.guard and which == "steered")):
                store[key(p)] = text
        return [store[key(p)] for p in prompts]

    def prefix(self, e: ExpectCheck) -> torch.Tensor | None:
        if e.baseline is None:
            return None
        return torch.tensor(self.tok(e.baseline, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def windows(self, e: ExpectCheck) -> tuple[str, torch.Tensor]:
        pf = self.files[e.texts]
        return pf.path, texts.windows(pf.prompts, self.tok, self.window, self.max_windows)

    # --- the three kinds -------------------------------------------------------------

    def rate(self, e: ExpectCheck, ck_dir: Path) -> MeasuredResult:
        pf = self.files[e.texts]
        schema = load_schema(e, ck_dir) if e.kind == "matches_schema" else None
        ps = list(pf.prompts)
        outputs = {"steered": self.gen("steered", ps), "base": self.gen("base", ps)}
        if e.baseline is not None:
            outputs["prompted"] = self.gen("base", [e.baseline + p for p in ps])
        runs, failures = {}, []
        for which, texts_ in outputs.items():
            judged = [judge(e, t, schema) for t in texts_]
            runs[which] = [j.passed for j in judged]
            if which == "steered":
                failures = [{"prompt": p, "steered": t, "detail": j.detail}
                            for p, t, j in zip(ps, texts_, judged) if not j.passed][:FAILURES_SHOWN]
        n = len(ps)

        def fig(which: str) -> Figure:
            k = sum(runs[which])
            rate = 100.0 * k / n
            ok = k * 100 >= e.percent * n  # exact: no float rounding at the bound
            return Figure(rate, ok, f"{k}/{n} prompts pass ({rate:.1f}%, need {e.percent:g}%)")

        return MeasuredResult(e, pf.path, n, "%", fig("steered"), fig("base"),
                              fig("prompted") if "prompted" in runs else None, tuple(failures),
                              self.guard)

    def kl(self, e: ExpectCheck) -> MeasuredResult:
        if e.texts:
            source, w = self.windows(e)
            steered = measure.next_token_kl(self.base, self.steered, w)
        else:
            source, w, steered = self.defaults.neutral_source, self.defaults.neutral_windows, self.defaults.kl
        prompted = None
        prefix = self.prefix(e)
        if prefix is not None:
            prompted = measure.next_token_kl(self.base, self.base, w, prefix=prefix, bos=self.tok.bos_token_id)

        def fig(k: measure.KL) -> Figure:
            return Figure(k.mean, k.mean < e.bound, f"mean {k.mean:.4f} nats/token (p95 {k.p95:.4f}), "
                          f"need below {e.bound:g}")

        return MeasuredResult(e, source, steered.n_tokens, "nats/token", fig(steered), None,
                              None if prompted is None else fig(prompted))

    def change(self, e: ExpectCheck, program: Program) -> MeasuredResult:
        if e.texts:
            source, w = self.windows(e)
            mask = content_mask(w, self.tok)
        else:
            d = self.defaults
            source, w, mask = d.prompts_source, d.prompt_windows, d.prompt_mask
        targets = [measure.Target(f, program.sae(f.sae).hook, ()) for f in e.features]
        b = measure.summed_mean(self.base, self.saes, targets, w, mask)
        s = measure.summed_mean(self.steered, self.saes, targets, w, mask)
        prefix = self.prefix(e)
        p = None if prefix is None else measure.summed_mean(self.base, self.saes, targets, w, mask,
                                                            prefix=prefix, bos=self.tok.bos_token_id)

        def fig(x: float) -> Figure:
            if b <= 0:
                return Figure(None, False, f"the features never fire on the base model here "
                              f"(summed mean {b:.4g}): nothing to measure a change against")
            pct = 100.0 * (x - b) / b
            ok = pct <= -e.percent if e.kind == "down" else pct >= e.percent
            return Figure(pct, ok, f"summed mean {b:.4g} -> {x:.4g} ({pct:+.1f}%, need "
                          f"{'-' if e.kind == 'down' else '+'}{e.percent:g}% or more)")

        return MeasuredResult(e, source, int(mask.sum()), "%", fig(s), None,
                              None if p is None else fig(p))


def run_measured(program: Program, base, steered, tok, saes: dict, files: dict, defaults: Defaults,
                 ck_dir: Path, *, guard: bool, max_new_tokens: int, window: int,
                 max_windows: int, base_cache: dict | None = None) -> list[MeasuredResult]:
    """Every rate, kl and down/up expectation of `program`, in spec order (`base_cache`:
    the base model's generations, kept across calls on the same base)."""
    r = _Runner(base, steered, tok, saes, files, defaults, guard=guard,
                max_new_tokens=max_new_tokens, window=window, max_windows=max_windows,
                base_cache=base_cache)
    out = []
    for e in program.expects:
        if e.kind in JUDGED and e.percent is not None:
            out.append(r.rate(e, ck_dir))
        elif e.kind == "kl_below":
            out.append(r.kl(e))
        elif e.kind in ("down", "up"):
            out.append(r.change(e, program))
    return out


__all__ = ["Defaults", "Figure", "MeasuredResult", "check_text", "load_prompt_files", "run_measured"]
