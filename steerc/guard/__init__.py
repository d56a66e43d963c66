"""Decode-time JSON guard (`enforce json format` / `enforce json schema`), built on xgrammar.

    check_schema_supported(schema, span) -> [Diagnostic]   # E470-E472, empty when enforceable
    GuardFactory(tok, schema).processor(max_new_tokens)    # a fresh LogitsProcessor per call
    write_guard(out_dir, ir.JsonConstraint)                # custom_generate/ in a checkpoint
    guarded_config(config_json) -> dict                    # + steerc_json_guard: generate() needs it
"""

from steerc.guard.checkpoint import CONFIG_KEY, GUARD_DIR, REQUIREMENTS, guarded_config, write_guard
from steerc.guard.schema import UNENFORCED_KEYWORDS, check_schema_supported

_PROCESSOR = ("GuardFactory", "JsonGuard", "json_guard")


def __getattr__(name: str):
    # processor.py imports torch, transformers and xgrammar (seconds): loaded on first use,
    # so `steerc check` can import steerc.guard.schema without them
    if name in _PROCESSOR:
        from steerc.guard import processor

        return getattr(processor, name)
    raise AttributeError(f"module 'steerc.guard' has no attribute {name!r}")

__all__ = ["CONFIG_KEY", "GUARD_DIR", "REQUIREMENTS", "guarded_config", "write_guard", "GuardFactory", "JsonGuard", "json_guard",
           "UNENFORCED_KEYWORDS", "check_schema_supported"]
