"""Decode-time JSON guard (`enforce json format` / `enforce json schema`), built on xgrammar.

    check_schema_supported(schema, span) -> [Diagnostic]   # E470-E472, empty when enforceable
    GuardFactory(tok, schema).processor(max_new_tokens)    # a fresh LogitsProcessor per call
    write_guard(out_dir, ir.JsonConstraint)                # custom_generate/ in a checkpoint
"""

from steerc.guard.checkpoint import GUARD_DIR, REQUIREMENTS, write_guard
from steerc.guard.processor import GuardFactory, JsonGuard, json_guard
from steerc.guard.schema import UNENFORCED_KEYWORDS, check_schema_supported

__all__ = ["GUARD_DIR", "REQUIREMENTS", "write_guard", "GuardFactory", "JsonGuard", "json_guard",
           "UNENFORCED_KEYWORDS", "check_schema_supported"]
