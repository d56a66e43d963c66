"""steerc: a declarative steering compiler for language models.

The public library API (see steerc/api.py and the README's "Python" section):

    import steerc
    steerc.check(spec) -> steerc.Checked            steerc.explain(spec) -> steerc.Explained
    steerc.compile(spec, out) -> steerc.Compiled    steerc.verify(out) -> steerc.verify.Report
    steerc.trace(text, spec=spec) -> steerc.Traced
    steerc.export_lm_eval(spec, "steer.pt")          # lm-eval `steered` vectors (docs/export.md)
    steerc.calibrate(spec) -> steerc.calibration.Curve   # the strength of `by auto` rules (docs/calibrate.md)

Bad input raises `steerc.DiagnosticError` (`.diagnostics`: a list of `steerc.Diagnostic`).
`import steerc` stays light (no torch): the heavy modules load inside the calls that need them.
"""

__version__ = "0.1.0"  # before the imports: modules below read it while steerc is importing

from steerc.api import (Checked, Compiled, Explained, Lowered, RuleSummary, Traced, calibrate, check,
                        compile, explain, export_lm_eval, trace)
from steerc.diagnostics import Diagnostic, DiagnosticError, Span

__all__ = ["check", "explain", "compile", "verify", "trace", "export_lm_eval", "calibrate", "Checked", "Explained", "Compiled",
           "Traced", "RuleSummary", "Lowered", "Diagnostic", "DiagnosticError", "Span"]


def __getattr__(name: str):
    # `steerc.verify` is the package steerc/verify/, which imports torch, so it loads on first
    # use; the package is callable: steerc.verify(out) is steerc.api.verify(out).
    if name == "verify":
        import importlib

        return importlib.import_module("steerc.verify")
    raise AttributeError(f"module 'steerc' has no attribute {name!r}")
