"""A spec's body -> one `Lowered`: every rule, `when`, `enforce json` and `expect` in source
order (E220 for a second `enforce json`), then the conflicts between the rules."""

from __future__ import annotations

import dataclasses

from steerc.compiler import ast
from steerc.compiler.resolve.conflicts import conflicts
from steerc.compiler.resolve.context import Context, Lowered
from steerc.compiler.resolve.enforce import lower_enforce
from steerc.compiler.resolve.expects import EXPECTATIONS, lower_expectation, with_baseline
from steerc.compiler.resolve.rules import RULES, lower_rule, lower_when
from steerc.diagnostics import Diagnostic


def lower_body(ctx: Context) -> Lowered:
    """Lower `ctx.decls.body`; a pure function of the context."""
    done = Lowered()
    json_stmt = None
    for st in ctx.decls.body:
        if isinstance(st, ast.EnforceJson):
            if json_stmt is not None:
                done += Lowered(diagnostics=(Diagnostic(
                    "E220", "`enforce json` appears twice", st.span,
                    f"the first is at {json_stmt.span}; a spec has one output format"),))
                continue
            json_stmt = st
        done += lower_statement(ctx, st)
    done += Lowered(diagnostics=conflicts(done.interventions))
    baseline = with_baseline(ctx, done.expects)  # every check carries the baseline prompt
    return dataclasses.replace(done, diagnostics=done.diagnostics + baseline.diagnostics,
                               expects=baseline.expects)


def lower_statement(ctx: Context, st: ast.Statement) -> Lowered:
    """One body statement (a declaration lowers to nothing: `bind` has read it)."""
    if isinstance(st, RULES):
        return lower_rule(ctx, st)
    if isinstance(st, ast.When):
        return lower_when(ctx, st)
    if isinstance(st, ast.EnforceJson):
        return lower_enforce(ctx, st)
    if isinstance(st, EXPECTATIONS):
        return lower_expectation(ctx, st)
    return Lowered()
