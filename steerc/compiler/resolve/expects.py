"""The `expect` half of resolve: `expect` and `baseline prompt` statements -> `ExpectCheck`s.

Called by `body.lower_statement` for each expectation in source order, then once (by
`body.lower_body`) for the `baseline prompt`, which every check carries (verify runs each check on the prompted base
model too). Files are checked here, at `check` time: a `matches schema` schema like
`enforce json schema`, a prompt file through the guarded reader (`steerc.files.prompts`,
E207 / E036), its sha256 recorded for the lock and the manifest.
"""

from __future__ import annotations

import dataclasses
import os

from steerc.compiler import ast
from steerc.compiler.ir import ExpectCheck
from steerc.compiler.locate import spec_relative
from steerc.compiler.resolve.context import Context, Lowered
from steerc.compiler.resolve.names import targets
from steerc.compiler.resolve.specfiles import load_schema, missing_file
from steerc.diagnostics import Collector, DiagnosticError
from steerc.files import prompts
from steerc.grammar.printer import format_target

EXPECTATIONS = (ast.Expect, ast.ExpectRate, ast.ExpectKl, ast.ExpectChange)


def lower_expectation(ctx: Context, x: ast.Expect | ast.ExpectRate | ast.ExpectKl | ast.ExpectChange
                      ) -> Lowered:
    """One expectation (`Lowered.expects`, or the diagnostics of why not); pure."""
    col = Collector()
    e, used = _expectation(ctx, x, col)
    return Lowered(diagnostics=tuple(col.diagnostics), used=used,
                   expects=(e,) if e is not None else ())


def _expectation(ctx: Context, x, col: Collector) -> tuple[ExpectCheck | None, frozenset[str]]:
    if isinstance(x, ast.ExpectKl):
        texts = _texts(x.texts, col)
        if texts is False:
            return None, frozenset()
        return ExpectCheck("", "kl_below", None, x.span, *texts, bound=float(x.bound.value)), frozenset()
    if isinstance(x, ast.ExpectChange):
        texts = _texts(x.texts, col)
        feats = targets(ctx, x.target, col)
        if texts is False or not feats:
            return None, frozenset()  # an empty set or a bad reference is reported by `targets`
        return (ExpectCheck("", x.direction, format_target(x.target), x.span, *texts,
                            percent=float(x.percent.value), features=tuple(f.id for f in feats)),
                frozenset(f.alias for f in feats))
    arg = x.arg.value if x.arg is not None else None
    if x.kind == "matches_schema":
        loaded = load_schema(x.arg, col)
        if loaded is None:
            return None, frozenset()
        arg = loaded[0]
    if isinstance(x, ast.Expect):
        return ExpectCheck(x.prompt.value, x.kind, arg, x.span), frozenset()
    texts = _texts(x.prompts, col)
    if texts is False:
        return None, frozenset()
    return ExpectCheck("", x.kind, arg, x.span, *texts, percent=float(x.percent.value)), frozenset()


def _texts(s: ast.Str | None, col: Collector) -> tuple[str | None, str | None] | bool:
    """(resolved path, sha256) of a prompt file, (None, None) when the statement names none
    (verify's own text sets are used), False after an error."""
    if s is None:
        return None, None
    path = spec_relative(s.span, s.value)
    if "\0" not in path and not os.path.lexists(path):
        missing_file(col, s, "prompt file", path)  # E207, with its did-you-mean hint
        return False
    try:
        pf = prompts.read_prompts(path, prompts.CHECK_KIND, s.span)
    except DiagnosticError as e:  # not a regular file, too large, not UTF-8, a bad JSON line
        col.diagnostics.extend(e.diagnostics)
        return False
    return path, pf.sha256


def with_baseline(ctx: Context, expects: tuple[ExpectCheck, ...]) -> Lowered:
    """`expects`, each carrying the spec's `baseline prompt` (E034 when there are two,
    E035 when it is empty), as the `Lowered` that replaces them."""
    col = Collector()
    first = None
    for st in ctx.decls.body:
        if not isinstance(st, ast.Baseline):
            continue
        if first is not None:
            col.error("E034", "`baseline prompt` appears twice", st.span,
                      f"the first is at {first.span}; verify compares against one prompt")
            continue
        first = st
        if not st.prompt.value.strip():
            col.error("E035", "the baseline prompt is empty", st.prompt.span,
                      "write the instruction a prompt engineer would use, e.g. "
                      '`baseline prompt "Answer only in JSON.\\n"`')
    if first is not None and first.prompt.value.strip():
        expects = tuple(dataclasses.replace(e, baseline=first.prompt.value) for e in expects)
    return Lowered(diagnostics=tuple(col.diagnostics), expects=expects)
