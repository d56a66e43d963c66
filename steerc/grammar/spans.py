"""Comparing ASTs by meaning: `strip_spans` replaces every Span with None.

`strip_spans(parse(format_spec(s))) == strip_spans(s)` is the formatter's contract.
"""

from __future__ import annotations

import dataclasses

from steerc.diagnostics import Span


def strip_spans(node):
    """A copy of an AST node (or tuple of nodes) with every `Span` field set to None and
    `Spec.file`/`comments` kept; leaves non-dataclass values as they are."""
    if isinstance(node, Span):
        return None
    if isinstance(node, tuple):
        return tuple(strip_spans(x) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: strip_spans(getattr(node, f.name)) for f in dataclasses.fields(node)}
        return dataclasses.replace(node, **changes)
    return node
