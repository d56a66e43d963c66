"""The `expect` half of resolve: `expect` and `baseline prompt` statements -> `ExpectCheck`s.

Called by `rules.lower_body` for each expectation in source order, then once for the
`baseline prompt`, which every check carries (verify runs each check on the prompted base
model too). Files are checked here, at `check` time: a `matches schema` schema like
`enforce json schema`, a prompt file through the guarded reader (`steerc.files.prompts`,
E207 / E036), its sha256 recorded for the lock and the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from steerc.compiler import ast
from steerc.compiler.ir import ExpectCheck
from steerc.diagnostics import DiagnosticError
from steerc.files import prompts
from steerc.grammar.printer import format_target

if TYPE_CHECKING:
    from steerc.compiler.resolve import Resolver

EXPECTATIONS = (ast.Expect, ast.ExpectRate, ast.ExpectKl, ast.ExpectChange)


def lower_expectation(r: "Resolver", x: ast.Expect | ast.ExpectRate | ast.ExpectKl | ast.ExpectChange
                      ) -> ExpectCheck | None:
    """One expectation; None after an error (reported to `r.col`)."""
    if isinstance(x, ast.ExpectKl):
        texts = _texts(r, x.texts)
        if texts is False:
            return None
        return ExpectCheck("", "kl_below", None, x.span, *texts, bound=float(x.bound.value))
    if isinstance(x, ast.ExpectChange):
        texts = _texts(r, x.texts)
        feats = r.targets(x.target)
        if texts is False or not feats:
            return None  # an empty set or a bad reference is reported by `targets`
        r.used.update(f.alias for f in feats)
        return ExpectCheck("", x.direction, format_target(x.target), x.span, *texts,
                           percent=float(x.percent.value), features=tuple(f.id for f in feats))
    arg = x.arg.value if x.arg is not None else None
    if x.kind == "matches_schema":
        from steerc.compiler.rules import load_schema

        loaded = load_schema(r, x.arg)
        if loaded is None:
            return None
        arg = loaded[0]
    if isinstance(x, ast.Expect):
        return ExpectCheck(x.prompt.value, x.kind, arg, x.span)
    texts = _texts(r, x.prompts)
    if texts is False:
        return None
    return ExpectCheck("", x.kind, arg, x.span, *texts, percent=float(x.percent.value))


def _texts(r: "Resolver", s: ast.Str | None) -> tuple[str | None, str | None] | bool:
    """(resolved path, sha256) of a prompt file, (None, None) when the statement names none
    (verify's own text sets are used), False after an error."""
    from steerc.compiler.resolve import missing_file, spec_relative

    if s is None:
        return None, None
    path = spec_relative(s.span, s.value)
    if "\0" not in path and not os.path.lexists(path):
        missing_file(r.col, s, "prompt file", path)  # E207, with its did-you-mean hint
        return False
    try:
        pf = prompts.read_prompts(path, prompts.CHECK_KIND, s.span)
    except DiagnosticError as e:  # not a regular file, too large, not UTF-8, a bad JSON line
        r.col.diagnostics.extend(e.diagnostics)
        return False
    return path, pf.sha256


def with_baseline(r: "Resolver", expects: list[ExpectCheck]) -> list[ExpectCheck]:
    """`expects`, each carrying the spec's `baseline prompt` (E034 when there are two)."""
    first = None
    for st in r.decls.body:
        if not isinstance(st, ast.Baseline):
            continue
        if first is not None:
            r.col.error("E034", "`baseline prompt` appears twice", st.span,
                        f"the first is at {first.span}; verify compares against one prompt")
            continue
        first = st
        if not st.prompt.value.strip():
            r.col.error("E035", "the baseline prompt is empty", st.prompt.span,
                        "write the instruction a prompt engineer would use, e.g. "
                        '`baseline prompt "Answer only in JSON.\\n"`')
    if first is None or not first.prompt.value.strip():
        return expects
    return [dataclasses.replace(e, baseline=first.prompt.value) for e in expects]
