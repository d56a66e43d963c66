"""SaeBindings of named directions -> `DirectionSAE`s (vectors read or computed now).

    saes = direction_saes(program.saes, program.model)          # alias -> DirectionSAE

File directions are read again (they are small). Difference-of-means directions load the
base model once per call and run each pair of prompt files once for all the layers that
use it. Results are kept for the process (keyed by the model and the files' hashes), so a
compile followed by a verify in one process computes each direction once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from steerc.compiler.ir import SaeBinding
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.directions.files import read_vectors, vectors_sha256
from steerc.directions.sae import DirectionSAE

_MEANS: dict[tuple, dict] = {}


def direction_saes(bindings: Iterable[SaeBinding], model_dir: str, *, allow_pickle: bool = False,
                   locate: Callable[[str], str] = lambda p: p, progress: bool = False) -> dict:
    """alias -> DirectionSAE for every direction binding (others are skipped). `locate`
    maps a recorded path to one on disk (verify: relative to the checkpoint)."""
    out = {}
    means: dict[tuple, list[SaeBinding]] = {}
    for b in bindings:
        d = b.direction
        if d is None:
            continue
        if d.kind == "file":
            path = locate(d.paths[0])
            vecs = read_vectors(path, d.key, allow_pickle=allow_pickle)
            if d.layer not in vecs:
                raise DiagnosticError([Diagnostic("E323", f"'{path}' no longer holds the vector of "
                                                  f"layer {d.layer} that direction '{d.name}' uses",
                                                  None, "the file changed since the spec was checked")])
            v = vecs[d.layer]
            out[b.alias] = DirectionSAE(v, b.hook, vectors_sha256({b.hook: v}), path)
        else:
            means.setdefault((d.paths, d.sha256s, d.last), []).append(b)
    if means:
        out.update(_mean_saes(means, model_dir, locate, progress))
    return out


def _mean_saes(groups: dict, model_dir: str, locate, progress: bool) -> dict:
    from steerc.files.hashing import model_fingerprint
    from steerc.files.prompts import VERIFY_KIND, read_prompts

    model = tok = None
    out = {}
    fingerprint = model_fingerprint(model_dir) if os.path.isdir(model_dir) else model_dir
    for (paths, shas, last), bs in groups.items():
        hooks = sorted({b.hook for b in bs})
        key = (fingerprint, shas, last, tuple(hooks))
        if key not in _MEANS:
            files = [read_prompts(locate(p), VERIFY_KIND) for p in paths]
            for f, want in zip(files, shas):
                if f.sha256 != want:
                    raise DiagnosticError([Diagnostic(
                        "E326", f"prompt file '{f.path}' changed since the spec was checked "
                        f"(sha256 {f.sha256[:12]}, the spec resolved {want[:12]})", None,
                        "re-run `steerc check` (and --write-lock) so the direction is computed "
                        "from the file you mean")])
            if model is None:
                model, tok = _load(model_dir)
            from steerc.directions.meandiff import mean_difference

            _MEANS[key] = mean_difference(model, tok, files[0].prompts, files[1].prompts, hooks,
                                          last=last, progress=progress)
        vecs = _MEANS[key]
        for b in bs:
            _nonzero(b, vecs[b.hook])
            out[b.alias] = DirectionSAE(vecs[b.hook], b.hook, b.sha256, locate(paths[0]))
    return out


def _nonzero(b: SaeBinding, v) -> None:
    if not v.any():
        raise DiagnosticError([Diagnostic("E324", f"direction '{b.direction.name}' at {b.hook} is "
                                          "all zeros: the two prompt sets have equal means there",
                                          b.span, "use prompt sets that differ in what the direction "
                                          "should capture")])


def _load(model_dir: str):
    from steerc.hfload import load_model, load_tokenizer

    return load_model(model_dir), load_tokenizer(model_dir)
