"""The one registry of SAE formats: name -> module with `sniff(path) -> bool` and
`load(path, **options) -> SAE`. Order matters only for sniffing: the first match wins, so
formats with distinctive files come before the pickle-based ones."""

from __future__ import annotations

from types import ModuleType

from .formats import gemma_scope, goodfire, llama_scope, openai, saelens, sparsify

FORMATS: dict[str, ModuleType] = {
    "saelens": saelens,
    "sparsify": sparsify,
    "llama_scope": llama_scope,
    "gemma_scope": gemma_scope,
    "openai": openai,
    "goodfire": goodfire,
}
