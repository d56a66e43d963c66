"""The resolve package: no import cycles, and lowering is a pure function of the context
(the same spec resolves to equal IR every time; a statement lowers the same whatever was
lowered before it)."""

from __future__ import annotations

import ast as pyast
import dataclasses
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import steerc.compiler.resolve as resolve_pkg
from steerc.compiler.load import DiskEnvironment, gather, load, merge
from steerc.compiler.resolve import Lowered, bind, lower_body
from steerc.compiler.resolve.body import lower_statement
from steerc.compiler.resolve.conflicts import conflicts
from steerc.diagnostics import Collector, DiagnosticError

from conftest import HEADER2

PKG = Path(resolve_pkg.__file__).parent
NAME = "steerc.compiler.resolve"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "specs" / "examples").glob("*.steer"))


def _imports(path: Path) -> set[str]:
    """The steerc.compiler.resolve modules one file imports (absolute or relative)."""
    out = set()
    for node in pyast.walk(pyast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, pyast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package itself
                base = NAME + ("." + base if base else "")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, pyast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out.update(n for n in names if n == NAME or n.startswith(NAME + ".")
                   and (PKG / (n[len(NAME) + 1:] + ".py")).exists())
    return out


def test_modules_import_no_cycle_and_never_their_package():
    graph = {}
    for p in sorted(PKG.glob("*.py")):
        mod = NAME if p.stem == "__init__" else f"{NAME}.{p.stem}"
        deps = _imports(p)
        if mod != NAME:
            assert NAME not in deps, f"{p.name} imports its package back"
        graph[mod] = deps
    assert len(graph) > 5
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert order[-1] == NAME


def test_imports_in_a_fresh_interpreter():
    """Each module imported first (steerc's modules dropped in between): none relies on
    another having been loaded, which is how a cycle shows up at run time."""
    mods = [NAME] + [f"{NAME}.{p.stem}" for p in sorted(PKG.glob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    for k in [k for k in sys.modules if k.split('.')[0] == 'steerc']:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_same_spec_resolves_to_equal_ir(path):
    first, second = load(path), load(path)
    assert first.program == second.program and first.program.interventions
    assert first.diagnostics == second.diagnostics


# ---- lowering against one context: a pool of statements, every rule kind and most codes --

POOL = [
    'suppress res2[1]', 'steer res2["json key"] by 4', 'clamp res2["json key"] to 5x max',
    'clamp res2["unmeasured feature"] to 5x max', 'scale res2[3] by 0.5', 'scale res2[3] by 2',
    'ablate res2[2] everywhere', 'steer res2[2] by 3', 'steer res2[2] by 400 at layers 0..1',
    'suppress features tagged "entity:person"', 'suppress features matching "bridge" limit 2',
    'scale mlp[2] by -1', 'suppress features tagged "entity:contact" in mlp',
    'when res2["greeting"] > 0.5 { steer res2["formal tone"] by 3 }',
    'when mlp[0] > 0.1 { suppress res2[1] }', 'steer res2[99] by 1', 'suppress nope[1]',
    'clamp res2[4] to 1 on prompt', 'enforce json format', 'expect "Say hi" is json',
]


@pytest.fixture(scope="module")
def pool_ctx(tmp_path_factory):
    p = tmp_path_factory.mktemp("pool") / "pool.steer"
    p.write_text(HEADER2 + "\n".join(POOL) + "\n", encoding="utf-8")
    col = Collector()
    specs, statements = gather(p, col)
    assert not col.has_errors
    decls = merge(specs[0].file, statements, [s.file for s in specs], col)
    with pytest.MonkeyPatch.context() as mp:  # conftest's cache dir is per test; this is per module
        mp.setenv("STEERC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        ctx, bound = bind(decls, DiskEnvironment())
    assert len(ctx.decls.body) == len(POOL) and not bound
    fresh = [lower_statement(ctx, s) for s in ctx.decls.body]
    return ctx, fresh


def _body(ctx, picks):
    return dataclasses.replace(ctx, decls=dataclasses.replace(ctx.decls,
                               body=tuple(ctx.decls.body[i] for i in picks)))


ENFORCE = POOL.index("enforce json format")


def _one_enforce(picks: list[int]) -> list[int]:
    """A body has one `enforce json` (a second is E220, tested by the golden files)."""
    return [i for n, i in enumerate(picks) if i != ENFORCE or ENFORCE not in picks[:n]]


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.integers(0, len(POOL) - 1), max_size=8).map(_one_enforce))
def test_lowering_is_pure(pool_ctx, picks):
    ctx, fresh = pool_ctx
    sub = _body(ctx, picks)
    once = lower_body(sub)
    assert lower_body(sub) == once  # repeatable: lowering changes nothing it reads
    # each statement lowers as it did alone and first, whatever came before it
    parts = [lower_statement(sub, s) for s in sub.decls.body]
    assert parts == [fresh[i] for i in picks]
    # the body is its statements in source order, then the conflicts between them
    total = sum(parts, Lowered())
    assert once == total + Lowered(diagnostics=conflicts(total.interventions))


def test_the_pool_covers_what_it_claims(pool_ctx):
    ctx, fresh = pool_ctx
    got = {d.code for part in fresh for d in part.diagnostics}
    every = lower_body(ctx)
    got |= {d.code for d in every.diagnostics}
    assert {"E201", "E202", "E214", "E217", "E218", "W201", "W202", "W203"} <= got, got
    assert every.used == {"res2", "mlp"} and every.json is not None and every.expects


def test_a_failing_spec_reports_the_same_twice(spec):
    p = spec("suppress res2[1]\nsuppress res2[999]\n")
    with pytest.raises(DiagnosticError) as first:
        load(p)
    with pytest.raises(DiagnosticError) as second:
        load(p)
    assert first.value.diagnostics == second.value.diagnostics
