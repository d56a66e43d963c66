"""The spec's `expect` checks, run on greedy generations of the base and steered models.

    results = run_expects(program, base, steered, tok, ck_dir, guard=True, max_new_tokens=64)

Each expect prompt is generated greedily (bounded by `max_new_tokens`) by both models; the
check is judged on the steered continuation (the base result, and with a `baseline prompt`
the base model's with that text prepended, are shown for contrast):

  is_json          json.loads(continuation.strip()) succeeds
  matches_schema   ... and the value validates against the schema (jsonschema)
  mentions X       X occurs in the continuation (case-insensitive)
  not_mentions X   X does not occur in it (case-insensitive)

A checkpoint with an `enforce json` guard generates through its own shipped
`custom_generate` (the code a downstream user runs), not through steerc's copy.
"""

from __future__ import annotations

import os
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from steerc.compiler.expect_text import check_text, expect_line  # noqa: F401 (re-exported)
from steerc.compiler.ir import ExpectCheck, Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read


JUDGED = ("is_json", "matches_schema", "mentions", "not_mentions")  # checks of one continuation


@dataclass(frozen=True)
class Judgement:
    passed: bool
    detail: str


@dataclass(frozen=True)
class ExpectResult:
    """One `expect` line: the check, both continuations and their judgements."""

    expect: ExpectCheck
    steered_text: str
    base_text: str
    steered: Judgement
    base: Judgement
    guarded: bool  # generated through the checkpoint's JSON guard
    prompted_text: str | None = None   # the base model with the spec's baseline prompt first
    prompted: Judgement | None = None

    @property
    def passed(self) -> bool:
        return self.steered.passed

    @property
    def line(self) -> str:
        """The expect as written (`expect "p" mentions "x"`)."""
        return expect_line(self.expect)


def load_schema(expect: ExpectCheck, ck_dir: Path):
    """The schema of a `matches schema` expect (path as recorded at compile time); E509."""
    from steerc.verify.checkpoint import resolve_path

    p = resolve_path(expect.arg or "", ck_dir)
    if p is None or not os.path.isfile(p):
        raise DiagnosticError([Diagnostic(
            "E509", f"schema file '{expect.arg}' of `expect ... matches schema` not found",
            expect.span, "run verify from the directory you compiled in")])
    return read.read_json(p, read.EXPECT_SCHEMA, want=None, span=expect.span)


def judge(expect: ExpectCheck, text: str, schema=None) -> Judgement:
    """Apply one check to a continuation."""
    if expect.kind in ("mentions", "not_mentions"):
        found = (expect.arg or "").lower() in text.lower()
        want = expect.kind == "mentions"
        return Judgement(found == want, f"{'found' if found else 'did not find'} {expect.arg!r}")
    try:
        value = json.loads(text.strip())
    except json.JSONDecodeError as e:
        return Judgement(False, f"not JSON: {e.msg} at char {e.pos}")
    if expect.kind == "is_json":
        return Judgement(True, f"valid JSON ({type(value).__name__})")
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "<root>"
        return Judgement(False, f"JSON, but fails the schema at {where}: {e.message}")
    return Judgement(True, "valid JSON matching the schema")


@torch.no_grad()
def generate(model, tok, prompt: str, max_new_tokens: int, guarded: bool) -> str:
    """Greedy continuation of `prompt` (special tokens dropped)."""
    enc = tok(prompt, return_tensors="pt")
    kw = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
              if tok.pad_token_id is not None else tok.eos_token_id)
    if guarded:
        kw["tokenizer"] = tok  # the shipped guard's generate() takes it; avoids a reload
    out = model.generate(**enc, **kw)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


@torch.no_grad()
def generate_many(model, tok, prompts: list[str], max_new_tokens: int, guarded: bool,
                  batch: int = 32) -> list[str]:
    """Greedy continuations of `prompts`, `batch` at a time, left-padded with an attention
    mask (one forward pass per new token for a whole batch: rate expectations over a
    prompt file cost tokens x batches, not tokens x prompts)."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    side = tok.padding_side
    out: list[str] = []
    try:
        tok.padding_side = "left"
        for i in range(0, len(prompts), batch):
            rows = [tok(p)["input_ids"] for p in prompts[i:i + batch]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
            kw = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
            if guarded:
                kw["tokenizer"] = tok
            gen = model.generate(input_ids=ids, attention_mask=mask, **kw)
            out += [tok.decode(g[width:], skip_special_tokens=True) for g in gen]
    finally:
        tok.padding_side = side
    return out


def run_expects(program: Program, base, steered, tok, ck_dir: Path, *, guard: bool,
                max_new_tokens: int = 64, base_cache: dict | None = None) -> list[ExpectResult]:
    """Generate for every single-prompt expect (each prompt once per model; with a baseline
    prompt, the base model once more with it prepended) and judge the checks. `base_cache`
    keeps the base model's generations across calls (the steered ones are never kept)."""
    cache: dict[tuple[str, str], str] = {}
    shared = {} if base_cache is None else base_cache

    def gen(which: str, prompt: str) -> str:
        store, key = (shared, ("one", prompt)) if which == "base" else (cache, (which, prompt))
        if key not in store:
            model = steered if which == "steered" else base
            store[key] = generate(model, tok, prompt, max_new_tokens, guard and which == "steered")
        return store[key]

    results = []
    for e in program.expects:
        if e.kind not in JUDGED or e.percent is not None:
            continue  # measured over a file or a text set: steerc/verify/expectations.py
        schema = load_schema(e, ck_dir) if e.kind == "matches_schema" else None
        s, b = gen("steered", e.prompt), gen("base", e.prompt)
        p = None if e.baseline is None else gen("base", e.baseline + e.prompt)
        results.append(ExpectResult(e, s, b, judge(e, s, schema), judge(e, b, schema), guard,
                                    p, None if p is None else judge(e, p, schema)))
    return results


def samples(prompts, base, steered, tok, *, guard: bool, max_new_tokens: int) -> list[dict]:
    """Before/after generations for prompts without an expect (report `samples`)."""
    return [{"prompt": p, "base": generate(base, tok, p, max_new_tokens, False),
             "steered": generate(steered, tok, p, max_new_tokens, guard)} for p in prompts]
