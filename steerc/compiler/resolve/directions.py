"""`direction NAME = ...` declarations -> one-feature SAE bindings (E036, E216, E270-E274,
E307, E320-E325 at the spec's spans).

A direction lives in the residual stream after block L (`blocks.L.hook_resid_post`), the
layer convention of llama.cpp control vectors and IBM activation-steering files. A
direction with one layer is bound under its own name; one with several layers is bound
once per layer as `NAME@L`, and a rule naming it acts at every one of them.

Vector files are read here (check validates their shapes and hashes their vectors); a
difference of means needs the model, so only its prompt files are read and hashed here,
and the vectors are computed when the program is built (`steerc.directions.build`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steerc.arch.hookpoint import HookPoint
from steerc.compiler import ast
from steerc.compiler.ir import DirectionSource, SaeBinding
from steerc.compiler.locate import spec_relative
from steerc.compiler.resolve.specfiles import missing_file
from steerc.diagnostics import Collector, Diagnostic, DiagnosticError
from steerc.files.hashing import bytes_sha256


@dataclass(frozen=True)
class DirectionBinding:
    """A declared direction and its bindings, one per layer, in layer order."""

    decl: ast.DirectionDecl
    saes: tuple[SaeBinding, ...]


def bind_directions(decls: tuple[ast.DirectionDecl, ...], sae_aliases: set[str], env,
                    model: str, n_layers: int | None, col: Collector) -> dict[str, DirectionBinding]:
    """name -> binding of every direction that resolves (the others are reported)."""
    out = {}
    width = _width(env, model)
    for d in decls:
        name = d.name.value
        if name in sae_aliases:
            col.error("E270", f"'{name}' names both an SAE and a direction", d.name.span,
                      "give the direction another name: rules refer to both by name")
            continue
        try:
            saes = _bind(d, env, n_layers, width, col)
        except DiagnosticError as e:
            col.diagnostics.extend(x if x.span else Diagnostic(x.code, x.message, d.span, x.hint)
                                   for x in e.diagnostics)
            continue
        if saes:
            out[name] = DirectionBinding(d, saes)
    return out


def _width(env, model: str) -> int | None:
    """The model's hidden size, when the environment can read it (None: not checked here)."""
    read = getattr(env, "model_width", None)
    if read is None or not model or not os.path.isdir(model):
        return None
    try:
        return read(Path(model))
    except DiagnosticError:  # a bad config.json is reported where the model is declared
        return None


def _bind(d: ast.DirectionDecl, env, n_layers: int | None, width, col: Collector
          ) -> tuple[SaeBinding, ...]:
    src = d.source
    if isinstance(src, ast.DirMean):
        return _bind_mean(d, src, n_layers, width, col)
    return _bind_file(d, src, env, n_layers, width, col)


def _layers_ok(d: ast.DirectionDecl, layers: list[int], n_layers: int | None, col: Collector) -> bool:
    bad = [L for L in layers if n_layers is not None and L >= n_layers]
    if bad:
        col.error("E216", f"direction '{d.name.value}' is at layer {bad[0]}, but the model has "
                  f"{n_layers} layers", d.layers_span or d.span, f"layers are 0..{n_layers - 1}")
        return False
    return True


def _need_layers(d: ast.DirectionDecl, why: str, col: Collector) -> None:
    col.error("E271", f"direction '{d.name.value}': {why}, so the spec must say where it acts",
              d.span, "add  at layer L  (the residual stream after block L) or  at layers A..B")


def _bind_file(d: ast.DirectionDecl, src: ast.DirFile, env, n_layers, width, col
               ) -> tuple[SaeBinding, ...]:
    from steerc.directions.files import read_vectors, vectors_sha256
    from steerc.files.hashing import file_sha256

    path = spec_relative(src.path.span, src.path.value)
    if "\0" not in path and not os.path.lexists(path):
        missing_file(col, src.path, "vector file", path)
        return ()
    vecs = read_vectors(path, src.key.value if src.key else None,
                        allow_pickle=getattr(env, "allow_pickle", False), span=src.path.span,
                        key_span=src.key.span if src.key else None)
    if None in vecs:  # one vector: the spec says where
        if d.layers is None:
            _need_layers(d, f"'{src.path.value}' holds one vector and no layer", col)
            return ()
        layers = list(range(d.layers[0], d.layers[1] + 1))
        picked = {L: (None, vecs[None]) for L in layers}
    else:
        have = sorted(vecs)
        layers = have if d.layers is None else list(range(d.layers[0], d.layers[1] + 1))
        missing = [L for L in layers if L not in vecs]
        if missing:
            col.error("E323", f"'{src.path.value}' has no vector for layer {missing[0]}",
                      d.layers_span or src.path.span,
                      f"it holds layers {', '.join(map(str, have[:16]))}"
                      + (", ..." if len(have) > 16 else ""))
            return ()
        picked = {L: (L, vecs[L]) for L in layers}
    if not _layers_ok(d, layers, n_layers, col):
        return ()
    size = len(next(iter(picked.values()))[1])
    if width is not None and size != width:
        col.error("E323", f"the vectors in '{src.path.value}' have {size} dimensions; the model's "
                  f"hidden size is {width}", src.path.span,
                  "the file was made for another model")
        return ()
    fsha = file_sha256(path)
    out = []
    for L, (layer, v) in picked.items():
        hook = HookPoint(L, "hook_resid_post").name
        source = DirectionSource(d.name.value, "file", (path,), (fsha,),
                                 src.key.value if src.key else None, layer)
        out.append(SaeBinding(_alias(d, L, len(picked)), path, hook, size, 1,
                              vectors_sha256({hook: v}), "direction", span=d.span, direction=source))
    return tuple(out)


def _bind_mean(d: ast.DirectionDecl, src: ast.DirMean, n_layers, width, col
               ) -> tuple[SaeBinding, ...]:
    from steerc.files.prompts import CHECK_KIND, read_prompts

    if d.layers is None:
        _need_layers(d, "a difference of means is taken at a layer", col)
        return ()
    files = []
    for s in (src.a, src.b):
        path = spec_relative(s.span, s.value)
        if "\0" not in path and not os.path.lexists(path):
            missing_file(col, s, "prompt file", path)
            continue
        try:
            files.append(read_prompts(path, CHECK_KIND, s.span))
        except DiagnosticError as e:
            col.diagnostics.extend(e.diagnostics)
    if len(files) < 2:
        return ()
    if files[0].sha256 == files[1].sha256:
        col.error("E273", f"direction '{d.name.value}' is the mean of one prompt set minus itself",
                  src.b.span, "name two different prompt files: the prompts with the behaviour, "
                  "then the prompts without it")
        return ()
    layers = list(range(d.layers[0], d.layers[1] + 1))
    if not _layers_ok(d, layers, n_layers, col):
        return ()
    paths = tuple(f.path for f in files)
    shas = tuple(f.sha256 for f in files)
    out = []
    for L in layers:
        hook = HookPoint(L, "hook_resid_post").name
        # the recipe, not the vector: the vector needs the model, which check does not load
        where = "last" if src.last is not None else "all"
        recipe = bytes_sha256(("steerc-mean-direction-v1\0" + "\0".join((hook, where, *shas))).encode())
        out.append(SaeBinding(_alias(d, L, len(layers)), paths[0], hook, width or 0, 1, recipe,
                              "direction", span=d.span,
                              direction=DirectionSource(d.name.value, "mean", paths, shas,
                                                        last=src.last is not None)))
    return tuple(out)


def _alias(d: ast.DirectionDecl, layer: int, n: int) -> str:
    return d.name.value if n == 1 else f"{d.name.value}@{layer}"

