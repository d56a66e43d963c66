"""A Program as a compiled checkpoint records it: no trace of the working directory.

    shown = portable_program(program, out_dir)

Every local path becomes relative to the checkpoint directory (`/`-separated), so a compile
gives the same bytes from any working directory and `steerc verify` finds the inputs from
any working directory; a model or SAE named on the Hub is recorded by name
(`hf://org/repo[/folder]`, with its commit in the manifest), not by its place in this
machine's Hub cache.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from steerc.compiler.ir import Program
from steerc.diagnostics import Span


def relative_to(path: str, out: str | os.PathLike) -> str:
    """`path` relative to the directory `out`, `/`-separated."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(out)).replace(os.sep, "/")


def portable_program(program: Program, out: str | os.PathLike) -> Program:
    """`program` with its paths relative to `out` and Hub inputs by name (see module doc)."""
    out = Path(out)

    def rel(p: str | None) -> str | None:
        return None if p is None else relative_to(p, out)

    def span(s: Span | None) -> Span | None:
        return None if s is None else dataclasses.replace(s, file=rel(s.file))

    src = program.model_source
    ivs = tuple(dataclasses.replace(iv, span=span(iv.span)) for iv in program.interventions)
    saes = tuple(dataclasses.replace(b, path=b.source.uri() if b.source else rel(b.path),
                                     span=span(b.span), direction=b.direction and dataclasses.replace(
                                         b.direction, paths=tuple(rel(p) for p in b.direction.paths)))
                 for b in program.saes)
    json_c = program.json and dataclasses.replace(program.json, schema_path=rel(program.json.schema_path),
                                                  span=span(program.json.span))
    expects = tuple(dataclasses.replace(e, span=span(e.span), texts=rel(e.texts),
                                        arg=rel(e.arg) if e.kind == "matches_schema" and e.arg else e.arg)
                    for e in program.expects)
    return dataclasses.replace(
        program, spec_file=rel(program.spec_file), files=tuple(rel(f) for f in program.files),
        model=src.uri() if src else rel(program.model), model_span=span(program.model_span), saes=saes, catalogue=rel(program.catalogue),
        interventions=ivs, json=json_c, expects=expects)
