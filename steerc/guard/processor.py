"""Build JSON-guard logits processors for transformers (the runtime side of `enforce json`).

The processor class lives in `shipped_generate.py`, the file shipped inside
checkpoints, so steerc and a downstream user run the same code:

    factory = GuardFactory(tokenizer, schema_text_or_None, eos_token_ids=[tok.eos_token_id])
    out = model.generate(ids, max_new_tokens=128, logits_processor=[factory.processor(128)])
    factory.last.finish(out)   # -> rows that hit the limit before the document was complete

Compiling a grammar costs milliseconds to seconds, so a factory compiles once (and builds the
guard's lookup tables once); every `generate()` call needs a fresh processor (matchers hold
per-call state).
"""

from __future__ import annotations

from steerc.diagnostics import Diagnostic, DiagnosticError, Span
from steerc.guard import shipped_generate as _tpl
from steerc.guard.schema import E_REJECTED, check_schema_supported

JsonGuard = _tpl.JsonGuard


class GuardFactory:
    """A compiled grammar for one tokenizer and schema; `.processor()` makes fresh guards."""

    def __init__(self, tokenizer, schema: str | None = None, *, vocab_size: int | None = None,
                 eos_token_ids: list[int] | None = None, span: Span | None = None):
        if schema is not None:
            problems = check_schema_supported(schema, span)
            if problems:
                raise DiagnosticError(problems)
        eos = eos_token_ids if eos_token_ids is not None else [tokenizer.eos_token_id]
        if not eos or any(e is None for e in eos):
            raise DiagnosticError([Diagnostic(
                E_REJECTED, "the JSON guard needs an EOS token id; the tokenizer has none", span,
                "pass eos_token_ids=[...] or set tokenizer.eos_token")])
        self.eos_token_ids = [int(e) for e in eos]
        self.grammar = _tpl.compile_grammar(tokenizer, schema, vocab_size, self.eos_token_ids)
        self.tables = _tpl.GuardTables(self.grammar, self.eos_token_ids)  # shared by its guards
        self.last: JsonGuard | None = None

    def processor(self, max_new_tokens: int | None = None, **options) -> JsonGuard:
        """A fresh `JsonGuard` for one generate() call; pass the call's `max_new_tokens` so
        the guard can close the document in time (`margin`, `search_nodes` tune that)."""
        self.last = JsonGuard(self.grammar, self.eos_token_ids, max_new_tokens=max_new_tokens,
                              tables=self.tables, **options)
        return self.last


def json_guard(tokenizer, schema: str | None = None, *, max_new_tokens: int | None = None,
               vocab_size: int | None = None, eos_token_ids: list[int] | None = None) -> JsonGuard:
    """One-shot: compile and return a fresh processor (any JSON when `schema` is None)."""
    return GuardFactory(tokenizer, schema, vocab_size=vocab_size,
                        eos_token_ids=eos_token_ids).processor(max_new_tokens)
