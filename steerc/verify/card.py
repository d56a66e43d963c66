"""`steerc verify CKPT --card`: the verify results, summarised into the checkpoint's README.md
(the model card's "Verification" section, between the markers compile writes).

    check_card(ckpt)                          # before the work: E458 when there is no section
    write_card_results(ckpt, report, inputs)  # after it: the section replaced, atomically
"""

from __future__ import annotations

import os
from pathlib import Path

from steerc.diagnostics import Diagnostic, DiagnosticError

CARD = "README.md"
_HINT = "recompile with this steerc version: its model card has the section"


def _read(checkpoint) -> tuple[Path, str]:
    from steerc.compiler.modelcard import VERIFY_END, VERIFY_START
    from steerc.files import read

    path = Path(checkpoint) / CARD
    card = read.read_text(path, read.Kind("model card", 64 << 20, "E458", "E458", _HINT))
    if VERIFY_START not in card or VERIFY_END not in card:
        raise DiagnosticError([Diagnostic("E458", f"{path} has no steerc verification section",
                                          None, _HINT)])
    return path, card


def check_card(checkpoint: str | os.PathLike) -> None:
    """E458 unless the checkpoint's model card has a verification section to fill."""
    _read(checkpoint)


def write_card_results(checkpoint: str | os.PathLike, report, inputs) -> Path:
    """Replace the card's verification section with `report`'s summary (atomically); E458
    when the checkpoint has no card with that section. `inputs`: what may not be written over."""
    from steerc.compiler.modelcard import with_verify_results
    from steerc.files.write import write_atomic

    path, card = _read(checkpoint)
    new = with_verify_results(card, report, checkpoint)
    if new is None:
        raise DiagnosticError([Diagnostic("E458", f"{path} has no steerc verification section",
                                          None, _HINT)])
    write_atomic(path, new, inputs, "model card")
    return path
