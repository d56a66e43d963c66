"""The diagnostic codes as the docs define them, shipped as JSON (code -> texts, docs page).

`steerc/report/diagnostic_codes.json` is generated from the docs' `| code | meaning | ... |`
tables by `python -m steerc.report.codes_docs` (steerc/report/codes_docs.py); the docs stay
the one hand-written list of codes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

CODES_JSON = "diagnostic_codes.json"


@lru_cache(maxsize=1)
def documented_codes() -> dict[str, dict]:
    """The shipped table (code -> summary, fix, example, page, section, anchor)."""
    text = resources.files("steerc.report").joinpath(CODES_JSON).read_text(encoding="utf-8")
    return json.loads(text)
