"""A rule's canonical source text, rebuilt from the AST: the `origin` of each intervention.

Rebuilt rather than sliced from the file so the text is the same whatever the spacing,
comments or line breaks of the source (the lock keys rules by it).
"""

from __future__ import annotations

import json

from steerc.compiler import ast


def num(x: float) -> str:
    """A number as a spec would write it (`3`, `0.5`, `-1e-06`)."""
    return f"{x:g}"


def string(s: str) -> str:
    """A string literal with the spec's escapes."""
    return json.dumps(s, ensure_ascii=False)


def target_text(t: ast.Target) -> str:
    """`res2[12]`, `res2["email"]`, `res2[search "q"]`, `features tagged "t" in res2 limit 3`."""
    if isinstance(t, ast.IndexRef):
        return f"{t.sae.value}[{t.index}]"
    if isinstance(t, ast.LabelRef):
        return f"{t.sae.value}[{string(t.label.value)}]"
    if isinstance(t, ast.SearchRef):
        return f"{t.sae.value}[search {string(t.query.value)}]"
    head = (f"features tagged {string(t.tag.value)}" if isinstance(t, ast.TagSet)
            else f"features matching {string(t.query.value)}")
    if t.sae is not None:
        head += f" in {t.sae.value}"
    if t.limit is not None:
        head += f" limit {t.limit}"
    return head


def scope_text(s: ast.Scope) -> str:
    out = ""
    if s.layers is not None:
        out += f" at layers {s.layers[0]}..{s.layers[1]}"
    if s.everywhere:
        out += " everywhere"
    if s.positions != "all":
        out += f" on {s.positions}"
    return out


def rule_origin(r: ast.Rule) -> str:
    """The rule as a spec would write it, on one line."""
    t = target_text(r.target)
    if isinstance(r, ast.Suppress):
        body = f"suppress {t}"
    elif isinstance(r, ast.Ablate):
        body = f"ablate {t}"
    elif isinstance(r, ast.Steer):
        body = f"{r.verb} {t} by {num(r.amount.value)}"
    elif isinstance(r, ast.Clamp):
        body = f"clamp {t} to {num(r.value.value)}" + ("x max" if r.unit == "max" else "")
    elif isinstance(r, ast.Scale):
        body = f"scale {t} by {num(r.factor.value)}"
    else:  # pragma: no cover - the AST has no other rule
        raise TypeError(type(r).__name__)
    return body + scope_text(r.scope)


def when_origin(w: ast.When) -> str:
    """`when res2["greeting"] > 0.5` (the head of a when block)."""
    return f"when {target_text(w.feature)} > {num(w.threshold.value)}"


def enforce_origin(e: ast.EnforceJson) -> str:
    """`enforce json format` or `enforce json schema "f"`, with a strength when given."""
    head = "enforce json format" if e.schema is None else f"enforce json schema {string(e.schema.value)}"
    if e.strength is not None:
        head += f" strength {num(e.strength.value)}"
    return head
