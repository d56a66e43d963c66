"""A table-driven adapter for decoder-only families: each family file fills in templates.

Templates are module paths relative to the CausalLM model with `{L}` for the layer index;
`HOOKS` maps a hook kind to (path, "in"|"out") per docs/saes.md.
"""

from __future__ import annotations

from steerc.arch.base import Adapter, EditSite, Embedding, Writer
from steerc.arch.hookpoint import HookPoint


class DecoderAdapter(Adapter):
    """Shared logic; subclasses set the class attributes below."""

    base: str = "model"                       # decoder stack
    layer: str = "model.layers.{L}"
    hooks: dict[str, tuple[str, str]] = {}    # hook kind -> (template, where)
    global_hooks: dict[str, tuple[str, str]] = {}
    attn_write: str = ""                      # module whose output is the attention write
    mlp_write: str = ""                       # module whose output is the MLP write
    embedding_modules: tuple[str, ...] = ("model.embed_tokens",)

    def block_hooks(self, config) -> dict[str, tuple[str, str]]:
        """The per-layer hook kinds this model has (a config can remove one: GPT-NeoX's
        parallel residual has no resid_mid)."""
        return self.hooks

    def module(self, hook: str, config) -> tuple[str, str]:
        p = HookPoint.parse(hook, self.n_layers(config))
        table = self.global_hooks if p.layer is None else self.block_hooks(config)
        if p.kind not in table:
            from steerc.diagnostics import Diagnostic, DiagnosticError

            raise DiagnosticError([Diagnostic(
                "E491", f"hook point '{hook}' does not exist in {self.name} models"
                + self.absent_hook_reason(p.kind, config), None,
                "supported here: " + ", ".join(sorted(table)))])
        path, where = table[p.kind]
        return (path if p.layer is None else path.format(L=p.layer)), where

    def absent_hook_reason(self, kind: str, config) -> str:
        """Why this family lacks hook kind `kind` (appended to E491), or ""."""
        return ""

    def edit_site(self, hook: str, config) -> EditSite:
        p = HookPoint.parse(hook, self.n_layers(config))
        self.module(hook, config)  # E491 where this model lacks the kind
        if p.kind == "hook_resid_mid":
            return EditSite(self.attn_write.format(L=p.layer), "out", self.layer.format(L=p.layer))
        path, where = self.module(hook, config)
        return EditSite(path, where)

    def write_sites(self, config) -> list[str]:
        sites = list(self.embedding_modules)
        for L in range(self.n_layers(config)):
            sites += [self.attn_write.format(L=L), self.mlp_write.format(L=L)]
        return sites

    def base_model(self, config) -> str:
        return self.base

    def lm_head(self, config) -> str:
        return "lm_head.weight"

    def _tied(self, config) -> str | None:
        return self.lm_head(config) if getattr(config, "tie_word_embeddings", False) else None


class LinearDecoderAdapter(DecoderAdapter):
    """Llama-shaped blocks: self_attn.o_proj and mlp.down_proj (nn.Linear) write the stream."""

    hooks = {
        "hook_resid_pre": ("model.layers.{L}", "in"),
        "hook_resid_mid": ("model.layers.{L}.post_attention_layernorm", "in"),
        "hook_resid_post": ("model.layers.{L}", "out"),
        "hook_attn_out": ("model.layers.{L}.self_attn", "out"),
        "hook_mlp_out": ("model.layers.{L}.mlp", "out"),
        "attn.hook_z": ("model.layers.{L}.self_attn.o_proj", "in"),
        "ln2.hook_normalized": ("model.layers.{L}.post_attention_layernorm", "out"),
    }
    global_hooks = {"hook_embed": ("model.embed_tokens", "out")}
    attn_write = "model.layers.{L}.self_attn"
    mlp_write = "model.layers.{L}.mlp"

    def writers(self, config) -> list[Writer]:
        out = []
        for L in range(self.n_layers(config)):
            p = f"model.layers.{L}"
            o_bias = f"{p}.self_attn.o_proj.bias" if self._o_bias(config) else None
            d_bias = f"{p}.mlp.down_proj.bias" if getattr(config, "mlp_bias", False) else None
            out += [Writer(f"{p}.self_attn.o_proj.weight", "linear", o_bias),
                    Writer(f"{p}.mlp.down_proj.weight", "linear", d_bias)]
        return out

    def _o_bias(self, config) -> bool:
        return bool(getattr(config, "attention_bias", False))

    def embeddings(self, config) -> list[Embedding]:
        return [Embedding("model.embed_tokens.weight", tied_to=self._tied(config))]
