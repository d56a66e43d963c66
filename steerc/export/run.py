"""`steerc export --to lm-eval`: load and validate the spec, plan the rows, write the file.

    res = export_lm_eval("specs/x.steer", "steer.pt")   # Exported; DiagnosticError otherwise
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.export import lmeval


@dataclass(frozen=True)
class Exported:
    out: str
    model: str                       # what to pass as lm-eval's `pretrained=`
    hookpoints: tuple[str, ...]
    features: int
    warnings: tuple[Diagnostic, ...] = ()


def export_lm_eval(spec: str | os.PathLike, out: str | os.PathLike, *, catalogue=None,
                   allow_pickle: bool = False) -> Exported:
    """Write `spec`'s additive rules to `out` (.pt or .csv, by its suffix) for lm-eval's
    `--model steered`. Raises DiagnosticError (E450-E457, the spec's own, E42x for `out`)
    before writing anything."""
    from steerc.compiler.build_checkpoint import load_base
    from steerc.compiler.inputs import program_inputs
    from steerc.compiler.load import DiskEnvironment, load
    from steerc.compiler.validate import validate_program
    from steerc.files.write import check_output_file, write_atomic

    suffix = os.path.splitext(str(out))[1].lower()
    if suffix not in lmeval.FORMATS:
        raise DiagnosticError([Diagnostic("E457", f"cannot tell the lm-eval file type of {str(out)!r}",
                                          None, "name the output FILE.pt (steering vectors) or "
                                                "FILE.csv (SAE names)")])
    loaded = load(str(spec), catalogue_override=None if catalogue is None else str(catalogue),
                  env=DiskEnvironment(allow_pickle=allow_pickle, fetch_weights=False))
    program, warnings = loaded.program, tuple(loaded.diagnostics)
    inputs = program_inputs(program)
    check_output_file(out, inputs, "lm-eval steering file")  # before the work
    info = validate_program(program)
    config, _, adapter = load_base(info.root)
    rows = lmeval.plan_rows(program, config, adapter)
    if suffix == ".csv":
        data: bytes | str = lmeval.csv_text(rows, program)
    else:
        data = _pt_bytes(program, rows, allow_pickle)
    write_atomic(out, data, inputs, "lm-eval steering file")
    src = program.model_source
    return Exported(str(out), src.repo if src else program.model,
                    tuple(dict.fromkeys(r.hookpoint for r in rows)), len(rows), warnings)


def _pt_bytes(program, rows, allow_pickle: bool) -> bytes:
    import torch

    from steerc.compiler import numeric
    from steerc.compiler.build_checkpoint import directions_from, load_saes

    saes = load_saes(program, allow_pickle=allow_pickle)
    numeric.check_program([r.intervention for r in rows], saes, torch.float32)  # E430-E432
    payload = lmeval.pt_payload(rows, directions_from(saes))
    for hp, entry in payload.items():
        if not torch.isfinite(entry["steering_vector"]).all():  # rules that overflow only summed
            iv = next(r.intervention for r in rows if r.hookpoint == hp)
            raise DiagnosticError([Diagnostic("E433", f"the summed steering vector at {hp} is not finite",
                                              iv.span, "smaller steer/amplify values")])
    buf = io.BytesIO()  # a buffer, not the temp file: torch.save names the archive after its file
    torch.save(payload, buf)
    return buf.getvalue()
