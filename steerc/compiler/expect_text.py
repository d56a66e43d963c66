"""An `expect` line as written, from its IR (`ExpectCheck`): what verify's report, the
calibration curve and the lock's calibration snapshot show. No torch."""

from __future__ import annotations

import json

from steerc.compiler.ir import ExpectCheck


def check_text(e: ExpectCheck) -> str:
    """The check of an expect as written: `is json`, `not mentions "x"`."""
    tail = {"is_json": "is json", "matches_schema": f'matches schema "{e.arg}"',
            "mentions": f'mentions "{e.arg}"', "not_mentions": f'not mentions "{e.arg}"'}
    return tail.get(e.kind, e.kind)


def expect_line(e: ExpectCheck) -> str:
    """An expect as written in the spec (paths as recorded in the checkpoint)."""
    on = f" on {json.dumps(e.texts)}" if e.texts else ""
    if e.kind == "kl_below":
        return f"expect kl{on} below {e.bound:g}"
    if e.kind in ("down", "up"):
        what = e.arg or (str(e.features[0]) if len(e.features) == 1 else f"{len(e.features)} features")
        return f"expect {what} {e.kind} by at least {e.percent:g}%{on}"
    if e.percent is not None:
        return f"expect at least {e.percent:g}% of {json.dumps(e.texts)} {check_text(e)}"
    return f"expect {json.dumps(e.prompt)} {check_text(e)}"
