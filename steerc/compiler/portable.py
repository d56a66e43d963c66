"""Paths as a compiled checkpoint records them: relative to the root spec's directory.

    shown = portable(program)          # the Program with every path spec-relative, `/`-separated

A resolved Program holds paths as this process reached them (`specs/x.steer`,
`./specs/../demo/model`, `/home/ci/repo/demo/model`): they depend on the working directory
and on how the spec path was spelled. What a compile writes (manifest, model card, guard
config) records them relative to the root spec's directory instead, the same convention as
`steer.lock`, so the output bytes are the same from any working directory and no absolute
build path reaches a checkpoint that is shared. Both ends of each relative path are made
absolute against the same working directory, so they cancel.
"""

from __future__ import annotations

import dataclasses
import os

from steerc.compiler.ir import ExpectCheck, JsonConstraint, Program
from steerc.diagnostics import Span


def spec_dir(program: Program) -> str:
    """The absolute directory of the program's root spec file."""
    return os.path.dirname(os.path.abspath(program.spec_file))


def relative_to(path: str, base: str) -> str:
    """`path` relative to the absolute directory `base`, `/`-separated."""
    return os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")


def _span(s: Span | None, base: str) -> Span | None:
    return None if s is None else dataclasses.replace(s, file=relative_to(s.file, base))


def portable(program: Program) -> Program:
    """`program` with its spec files, spans, model folder, SAE, catalogue and schema paths
    relative to the root spec's directory (a model that is no local folder, e.g. a hub id,
    is kept as written)."""
    base = spec_dir(program)
    rel = lambda p: relative_to(p, base)  # noqa: E731

    j = program.json
    return dataclasses.replace(
        program,
        spec_file=rel(program.spec_file),
        model=rel(program.model) if os.path.isdir(program.model) else program.model,
        model_span=_span(program.model_span, base),
        saes=tuple(dataclasses.replace(b, path=rel(b.path), span=_span(b.span, base))
                   for b in program.saes),
        catalogue=None if program.catalogue is None else rel(program.catalogue),
        interventions=tuple(dataclasses.replace(i, span=_span(i.span, base))
                           for i in program.interventions),
        json=None if j is None else JsonConstraint(
            None if j.schema_path is None else rel(j.schema_path), j.schema, _span(j.span, base)),
        expects=tuple(ExpectCheck(e.prompt, e.kind,
                                  rel(e.arg) if e.kind == "matches_schema" and e.arg else e.arg,
                                  _span(e.span, base)) for e in program.expects),
        files=tuple(rel(f) for f in program.files),
    )
