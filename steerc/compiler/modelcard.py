"""README.md for a compiled checkpoint (its model card): Hugging Face Hub metadata, what
changed, how to load it, which engines run it, the JSON guard's limits, verify results, the
spec text and provenance. Deterministic for equal inputs; no absolute path of the build.

    text = model_card(shown, plan, manifest, sources=[(read_from, shown_as), ...], out=OUT)
    text = with_verify_results(text, report, checkpoint)   # `steerc verify OUT --card`
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter

from steerc.targets import TARGETS
from steerc.compiler.describe import describe_calibrated
from steerc.compiler.rulegroups import group_by_rule

_KIND = {"weights": "exact weight edit", "hook": "hook module (exact, runs in forward)"}
TAGS = ("steerc", "steering", "sparse-autoencoder")
VERIFY_START = "<!-- steerc:verify:start -->"
VERIFY_END = "<!-- steerc:verify:end -->"
_NOT_VERIFIED = ("Not verified yet. `steerc verify PATH --card` measures this checkpoint "
                 "against its base model and writes the results here.")


def _front_matter(program, library: str = "transformers") -> list[str]:
    """Hub metadata. `base_model` only when the spec named a Hub repo: a local path means
    nothing on the Hub (and would leak the build machine's layout)."""
    import yaml  # PyYAML: a transformers dependency; quotes whatever needs quoting

    meta: dict = {}
    if program.model_source is not None:
        meta["base_model"] = program.model_source.repo
    meta["library_name"] = library
    meta["tags"] = list(TAGS)
    return ["---", yaml.safe_dump(meta, sort_keys=False, default_flow_style=False).rstrip("\n"), "---"]


def _base(program) -> str:
    src = program.model_source
    if src is None:
        return f"`{program.model}`"
    return f"`{src.repo}` (Hugging Face Hub, commit `{src.commit}`)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rule_row(g) -> str:
    """One table row per source rule; a rule whose features lower in several ways lists
    each way with its feature count (`steerc-manifest.json` has every feature)."""
    kinds = Counter(lo.kind for lo in g.items)
    shown = "; ".join(_KIND.get(k, k) + (f" ({n})" if len(kinds) > 1 else "") for k, n in kinds.items())
    whys = "; ".join(dict.fromkeys(lo.reason for lo in g.items))
    return f"| `{_cell(g.origin)}` | {len(g)} | {shown} | {whys} |"


def model_card(program, plan, manifest: dict, *, sources=(), out: str | os.PathLike | None = None) -> str:
    """The downstream user's model card (Markdown with YAML front matter).

    `program` is the checkpoint's portable program (paths relative to the checkpoint);
    `sources`: (path to read, name to show) per spec file, whose text the card quotes;
    `out`: the checkpoint's final directory, which absolute paths in that text are shown
    relative to (as everywhere else in the output). A target may write the whole card
    (`model_card`: a file that is no checkpoint) or its "how to load" part (`card_sections`:
    an adapter) and name its Hub `library_name`."""
    target = TARGETS.get(plan.target)
    own = getattr(target, "model_card", None)
    if own is not None:  # an output that is not a transformers checkpoint says what it is itself
        return own(program, plan, manifest)
    hooks = plan.target == "hooks" and (bool(plan.hooks) or program.json is not None)
    library = getattr(target, "library_name", "transformers")
    lines = _front_matter(program, library) + ["", "# Steered checkpoint (steerc)", ""]
    lines += [f"Compiled by steerc {manifest['compiler']['version']} from `{program.spec_file}` "
              f"against base model {_base(program)}, target **{plan.target}**.", ""]
    lines += ["## What changed", "", "| rule | features | lowered as | why |", "|---|---|---|---|"]
    lines += [_rule_row(g) for g in group_by_rule(plan.lowerings, key=lambda lo: lo.intervention)]
    if not plan.lowerings:
        lines.append("| (no rules) | 0 | unchanged | |")
    if program.calibrated is not None:
        lines += ["", describe_calibrated(program).replace("calibrated:", "Calibrated strength:", 1)]
    sections = getattr(target, "card_sections", None)
    if sections is not None:
        lines += [""] + sections(program, plan, manifest)
    else:
        lines += ["", f"{len(manifest['edits'])} tensors were rewritten; every other tensor is "
                  "byte-identical to the base. `steerc-manifest.json` lists each edit with content "
                  "hashes before and after.", ""]
        lines += _how_to_load(plan, program, hooks)
    lines += _engines(plan.target)
    if program.json is not None:
        lines += _guard_section(program.json.schema is not None)
    lines += ["## Verification", "", VERIFY_START, _NOT_VERIFIED, VERIFY_END, ""]
    lines += _spec_section(sources, out)
    lines += ["## Provenance", "",
              f"- base model tensors sha256: `{manifest['base_model']['tensors_sha256']}`",
              f"- output tensors sha256: `{manifest['tensors_sha256']}`"]
    for s in manifest["saes"]:
        lines.append(f"- SAE `{s['alias']}` ({s['hook']}): `{s['sha256']}`")
    return "\n".join(lines) + "\n"


def _how_to_load(plan, program, hooks: bool) -> list[str]:
    lines = ["## How to load", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", ""]
    if hooks:
        # the tokenizer too: AutoTokenizer reads the custom config and would otherwise ask y/N
        lines += ['model = AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)',
                  'tok = AutoTokenizer.from_pretrained("PATH", trust_remote_code=True)', "```", "",
                  "`trust_remote_code=True` is required: some rules run as small hook modules "
                  "(`modeling_steerc.py`, torch and transformers only, no steerc install needed). "
                  f"The config's `model_type` is `steerc_{plan.family}`, so loading without it "
                  "fails instead of silently giving the un-steered base model.", ""]
        return lines
    return lines + ['model = AutoModelForCausalLM.from_pretrained("PATH")',
                    'tok = AutoTokenizer.from_pretrained("PATH")', "```", "",
                    "Every rule is an exact weight edit: this is a plain checkpoint of the base "
                    "architecture, with no custom code.", ""]


def _engines(target: str) -> list[str]:
    """Where this target's output runs: the target's own `engines` rows."""
    lines = ["## Where it runs", "", "| engine | runs | how | checked by |", "|---|---|---|---|"]
    for e in TARGETS[target].engines:
        lines.append(f"| {e.engine} | {'yes' if e.runs else '**no**'} | {_cell(e.how)} | {_cell(e.checked)} |")
    return lines + [""]


def _guard_section(has_schema: bool) -> list[str]:
    what = "JSON matching `custom_generate/schema.json`" if has_schema else "a JSON object or array"
    return [
        "## JSON guard", "",
        f"`model.generate` is replaced by `custom_generate/generate.py`, which lets only {what} be "
        "generated (needs `xgrammar`, see `custom_generate/requirements.txt`). `config.json` "
        "records `steerc_json_guard`: `model.save_pretrained(...)` of the loaded model writes "
        "`custom_generate/` into the copy, and a copy that lost it refuses to `generate()` "
        "(RuntimeError) instead of generating unguarded.", "",
        "The guard is decode-time code, not part of the weights. It does not run when:", "",
        "- the model is called directly: `model(ids)`, your own sampling loop, or log-likelihood "
        "scoring (lm-evaluation-harness `loglikelihood` tasks): the steering edits apply, the JSON "
        "constraint does not;",
        "- `transformers.GenerationMixin.generate(model, ...)` is called directly, "
        "`generate(custom_generate=...)` names another function, or your code replaces "
        "`model.generate`;",
        "- the weights are copied out another way (`model.state_dict()`, `torch.save`, another "
        "model class or engine) without `config.json` and `custom_generate/`;",
        "- `steerc_json_guard` is removed from `config.json` together with `custom_generate/` "
        "(`steerc verify` refuses a changed `config.json`).", "",
        "Beam search and assisted decoding are refused by the guard (an error, not a skip).", ""]


def _spec_section(sources, out) -> list[str]:
    from steerc.files import read

    from steerc.diagnostics import DiagnosticError

    texts = []
    for read_from, shown_as in sources:
        try:
            texts.append((shown_as, _portable_spec_text(read.read_text(read_from, read.SPEC), read_from, out)))
        except DiagnosticError:  # a Program built in memory (tests, the API) names no file
            continue
    if not texts:
        return []
    lines = ["## Spec", ""]
    for shown_as, text in texts:
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        lines += [f"`{shown_as}`:", "", fence + "steer", text.rstrip("\n"), fence, ""]
    return lines


def _path_strings(node):
    """Str nodes of a parsed spec that hold a file path (model, sae, catalogue, use, schemas)."""
    from steerc.compiler import ast

    if isinstance(node, (ast.ModelDecl, ast.SaeDecl)):
        if node.kind == "plain":
            yield node.path
        return
    if isinstance(node, (ast.CatalogueDecl, ast.Use)):
        yield node.path
        return
    if isinstance(node, ast.EnforceJson) and node.schema is not None:
        yield node.schema
    if isinstance(node, ast.Expect) and node.kind == "matches_schema" and node.arg is not None:
        yield node.arg
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _path_strings(getattr(node, f.name))
    elif isinstance(node, tuple):
        for x in node:
            yield from _path_strings(x)


def _portable_spec_text(text: str, path, out) -> str:
    """The spec text with each absolute path literal shown relative to the checkpoint, as
    the manifest records it (a relative path stays as written: relative to the spec)."""
    import json

    from steerc.compiler.portable import relative_to
    from steerc.diagnostics import DiagnosticError
    from steerc.grammar.parser import parse

    if out is None:
        return text
    try:
        spec = parse(text, str(path))
    except DiagnosticError:  # compile parsed it already; never expected
        return text
    lines = text.split("\n")
    found = [s for s in _path_strings(spec.statements) if os.path.isabs(s.value)]
    for s in sorted(found, key=lambda s: (s.span.line, s.span.col), reverse=True):
        row, start = s.span.line - 1, s.span.col - 1
        end = start + s.span.length
        lines[row] = lines[row][:start] + json.dumps(relative_to(s.value, out)) + lines[row][end:]
    return "\n".join(lines)


# -- verify results -------------------------------------------------------------------

def verify_summary(report, checkpoint: str | os.PathLike) -> list[str]:
    """Markdown lines summarising a verify report (steerc.verify.Report); local paths in it
    are shown relative to the checkpoint."""
    from steerc import __version__
    from steerc.verify.report import totals

    def where(src: str) -> str:
        return _rel(src, checkpoint)

    ok = "passed" if report.ok else "**failed**"
    lines = [f"`steerc verify` (steerc {__version__}): {ok}.", ""]
    t = totals(report.features)
    if t:
        lines += [f"Targeted feature activation, {report.prompt_tokens} tokens of "
                  f"{_cell(where(report.prompts_source))}:", "",
                  "| direction | features | base | steered | change |", "|---|---|---|---|---|"]
        for d, row in t.items():
            pct = "n/a" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%"
            lines.append(f"| {d} | {row['features']} | {row['base_sum']:.4g} | {row['steered_sum']:.4g} | {pct} |")
        lines.append("")
        failed = len(report.failed_features)
        if failed:
            lines += [f"{failed} targeted feature(s) moved against their rule (E540).", ""]
    kl = report.kl
    if kl.n_tokens:
        lines += [f"KL(base ‖ steered) on {kl.n_tokens} tokens of {_cell(where(report.neutral_source))}: "
                  f"mean {kl.mean:.4g}, p95 {kl.p95:.4g}, max {kl.max:.4g}.", ""]
    if report.expects:
        passed = sum(e.passed for e in report.expects)
        lines += [f"Expectations: {passed}/{len(report.expects)} passed"
                  + (" (generated with the JSON guard)" if report.guard else "") + ".", "",
                  "| expect | steered | base |", "|---|---|---|"]
        for e in report.expects:
            x = e.expect
            arg = _rel(x.arg, checkpoint) if x.kind == "matches_schema" and x.arg else x.arg
            rule = f"expect {_quote(x.prompt)} {x.kind.replace('_', ' ')}" + (f" {_quote(arg)}" if arg else "")
            if x.percent is not None or x.bound is not None or x.features:  # measured
                from steerc.verify.checks import expect_line

                rule = expect_line(x)  # texts as recorded: relative to the checkpoint
            base = "n/a" if e.base is None else "pass" if e.base.passed else "fail"  # kl, down/up: no base figure
            lines.append(f"| {_code(rule)} | {'pass' if e.steered.passed else 'FAIL'} | {base} |")
        lines.append("")
        lines += _blame_summary(report, checkpoint)
    return lines


def _blame_summary(report, checkpoint) -> list[str]:
    """Per blamed expectation, the rules whose removal moved it (verify's per-rule blame)."""
    blame_of = getattr(report, "blame_of", None)
    rows = [(e, blame_of(i)) for i, e in enumerate(report.expects)] if blame_of else []
    rows = [(e, b) for e, b in rows if b is not None]
    if not rows:
        return []
    from steerc.verify.checks import expect_line

    out = ["Per-rule blame (each expectation re-measured with each rule left out, and alone):", ""]
    for e, b in rows:
        head = f"- {_code(expect_line(e.expect))}: "  # texts as recorded: relative to the checkpoint
        moved = [r for r in b.rules if r.moved]
        if not moved:
            out.append(head + (b.note or "no single rule moved it") + ".")
            continue
        for r in moved:
            where = "" if r.span is None else f" ({_cell(_rel(r.span.file, checkpoint))}:{r.span.line}:{r.span.col})"
            out.append(head + f"{_code(r.rule)}{where}: {_cell(r.verdict)}.")
        if b.skipped:
            out.append(f"  ({b.skipped} more rules not blamed.)")
    return out + [""]


def _quote(text: str) -> str:
    """A string as a spec writes it (JSON escapes)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _code(text: str) -> str:
    """Inline Markdown code in a table cell, whatever backticks the text holds."""
    ticks = "`" * (1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks} {_cell(text)} {ticks}"


def _rel(src: str, checkpoint) -> str:
    """A text source as verify names it (a path, paths joined by ", ", or "built-in ..."),
    with each path that exists shown relative to the checkpoint, never as the build's path."""
    from steerc.compiler.portable import relative_to

    parts = src.split(", ") if not os.path.exists(src) else [src]
    return ", ".join(relative_to(p, checkpoint) if os.path.exists(p) else p for p in parts)


def with_verify_results(card: str, report, checkpoint: str | os.PathLike) -> str | None:
    """`card` with its verification section replaced by `report`'s summary; None when the
    card has no such section (not a card steerc wrote, or edited by hand)."""
    start, end = card.find(VERIFY_START), card.find(VERIFY_END)
    if start < 0 or end < start:
        return None
    body = "\n".join(verify_summary(report, checkpoint)).rstrip("\n")
    return card[:start + len(VERIFY_START)] + "\n" + body + "\n" + card[end:]


__all__ = ["model_card", "verify_summary", "with_verify_results", "TAGS"]
