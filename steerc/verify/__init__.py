"""steerc.verify: what `steerc verify` and `steerc trace` measure.

    report = verify_checkpoint("build/no_code", Options(prompts=None))   # -> Report
    render_text(report); to_json(report); write_plot(report, "out.png")
    rows = trace_text(model, tok, saes, catalogue, "def f(x):", top=10)  # per-token features

Error codes E501-E512, E540, E570 and W501-W502 are listed in docs/verify.md.
"""

import sys
import types

from steerc.verify.checkpoint import SteeredCheckpoint, load_models, open_steered
from steerc.verify.plot import write_plot
from steerc.verify.report import Report, render_text, to_json
from steerc.verify.run import Options, verify_checkpoint
from steerc.verify.trace import trace_text

__all__ = ["Options", "Report", "SteeredCheckpoint", "load_models", "open_steered",
           "render_text", "to_json", "trace_text", "verify_checkpoint", "write_plot"]


class _CallableModule(types.ModuleType):
    """`steerc.verify(out, ...)` runs `steerc.api.verify`: the package keeps its name for
    `from steerc.verify import Report` and is the library call too."""

    def __call__(self, checkpoint, **kwargs):
        from steerc.api import verify

        return verify(checkpoint, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
