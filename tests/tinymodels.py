"""Tiny random-weight models, tokenizers and SAEs for tests (no download, seconds to build).

    model, config = make_tiny("llama", tied=True)
    save_tiny("qwen2", tmp_path / "m", sharded=True)            # save_pretrained + tokenizer
    random_sae_dir(32, 64, "blocks.1.hook_resid_post", tmp_path / "sae", "jumprelu")

Every random model has non-zero biases and non-unit norm weights, so a test that forgets a
bias or a norm gain fails. Attention is `eager` everywhere (Gemma-2 soft-capping needs it, and
one implementation keeps fp32 comparisons tight).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from safetensors.torch import save_file

ARCHS = ("gpt2", "llama", "mistral", "qwen2", "gemma2", "qwen3", "gemma3_text", "phi3", "olmo2",
         "gpt_neox", "qwen2_moe")
# Families whose RMSNorm computes x * (1 + w): their gains are noise around 0.
_GAIN_AROUND_ZERO = ("gemma2", "gemma3_text")
VOCAB = 100
HIDDEN = 32
LAYERS = 3
HEADS = 2


def _config(arch: str, tied: bool | None, **overrides):
    import transformers as tf

    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                  initializer_range=0.2)  # O(1) residual norms, so SAE features fire
    if arch == "gpt2":
        kw = dict(n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=64, n_inner=4 * HIDDEN,
                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        cls = tf.GPT2Config
    elif arch == "gpt_neox":  # `use_parallel_residual` defaults to True (Pythia)
        kw = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, max_position_embeddings=64, rotary_pct=0.5)
        cls = tf.GPTNeoXConfig
    else:
        kw = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=1, head_dim=HIDDEN // HEADS,
                  max_position_embeddings=64)
        cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config,
               "gemma2": tf.Gemma2Config, "qwen3": tf.Qwen3Config,
               "gemma3_text": tf.Gemma3TextConfig, "phi3": tf.Phi3Config,
               "olmo2": tf.Olmo2Config, "qwen2_moe": tf.Qwen2MoeConfig}[arch]
        if arch == "mistral":
            kw["sliding_window"] = None
        if arch == "gemma2":
            kw.update(query_pre_attn_scalar=HIDDEN // HEADS, sliding_window=8)
        if arch == "gemma3_text":  # both layer kinds, a window shorter than the test prompts
            kw.update(query_pre_attn_scalar=HIDDEN // HEADS, sliding_window=4,
                      layer_types=["sliding_attention", "full_attention", "sliding_attention"])
        if arch == "qwen2_moe":  # 4 routed experts (top 2) + a gated shared expert; layer 2 dense
            kw.update(moe_intermediate_size=HIDDEN // 2, shared_expert_intermediate_size=HIDDEN,
                      num_experts=4, num_experts_per_tok=2, mlp_only_layers=[2])
    if tied is not None:
        kw["tie_word_embeddings"] = tied
    kw.update(common)
    kw.update(overrides)
    cfg = cls(**kw)
    cfg._attn_implementation = "eager"
    return cfg


def make_tiny(arch: str, *, tied: bool | None = None, dtype=torch.float32, seed: int = 0, **overrides):
    """A tiny random causal LM of family `arch` and its config, in eval mode.

    `tied` None keeps the family default (GPT-2/Gemma tied; the others untied).
    `overrides` go to the config (e.g. `sliding_window=4`, `mlp_bias=True`). Biases are
    random non-zero and norm gains are 1 + noise.
    """
    import transformers as tf

    if arch not in ARCHS:
        raise ValueError(f"unknown tiny arch {arch!r}; one of {ARCHS}")
    cfg = _config(arch, tied, **overrides)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "norm" in name or ".ln_" in name or name.endswith("ln_f.weight"):
                # Gemma norms compute (1 + w): noise around 0 there, around 1 elsewhere.
                base = 0.0 if arch in _GAIN_AROUND_ZERO else 1.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
    model = model.to(dtype).eval()
    return model, model.config


def tiny_tokenizer():
    """A character-level PreTrainedTokenizerFast: 4 specials + printable ASCII (<= VOCAB ids)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    # "\u0120" is byte-level BPE's space: transformers loads Qwen2 checkpoints with its own
    # byte-level Qwen2Tokenizer whatever tokenizer_config says, and spaces must survive that.
    chars = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"] + ["\u0120"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    assert len(vocab) <= VOCAB
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")


def save_tiny(arch: str, directory, *, sharded: bool = False, dtype=torch.float32,
              tied: bool | None = None, seed: int = 0, tokenizer: bool = True, **overrides):
    """Build `make_tiny(arch, ...)` and save it (safetensors) with a tiny tokenizer; returns
    the model. `sharded` splits the weights into several shards with an index file."""
    model, _ = make_tiny(arch, tied=tied, dtype=dtype, seed=seed, **overrides)
    directory = Path(directory)
    kw = {"max_shard_size": "20KB"} if sharded else {}
    model.save_pretrained(directory, safe_serialization=True, **kw)
    if tokenizer:
        tiny_tokenizer().save_pretrained(directory)
    return model


def random_sae_dir(d_in: int, d_sae: int, hook: str, directory, architecture: str = "jumprelu", *,
                   k: int | None = None, apply_b_dec_to_input: bool = False,
                   normalize_activations: str = "none", seed: int = 0, scale: float = 1.0):
    """Write a random SAELens v6 SAE (cfg.json + sae_weights.safetensors) and return its dir.

    Biases are non-zero; JumpReLU thresholds are positive and small enough that features fire
    on O(1)-norm inputs. `scale` multiplies the encoder (use it to match a model's residual
    norm). Independent of steerc's own loaders on purpose.
    """
    gen = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    W_enc = scale * rnd(d_in, d_sae) / d_in**0.5
    W_dec = rnd(d_sae, d_in) / d_in**0.5
    t = {"W_enc": W_enc, "W_dec": W_dec, "b_dec": 0.1 * rnd(d_in)}
    if architecture == "gated":
        t.update(b_gate=0.1 * rnd(d_sae), b_mag=0.1 * rnd(d_sae), r_mag=0.1 * rnd(d_sae))
    else:
        t["b_enc"] = 0.1 * rnd(d_sae)
    if architecture == "jumprelu":
        t["threshold"] = 0.05 + 0.2 * torch.rand(d_sae, generator=gen)
    cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": apply_b_dec_to_input,
           "normalize_activations": normalize_activations, "reshape_activations": "none",
           "architecture": architecture,
           "metadata": {"sae_lens_version": "6.0.0", "sae_lens_training_version": "6.0.0",
                        "model_name": "tiny", "hook_name": hook, "hook_head_index": None,
                        "model_class_name": "HookedTransformer", "context_size": 64,
                        "dataset_path": "none", "prepend_bos": True, "seqpos_slice": [None],
                        "model_from_pretrained_kwargs": {}, "exclude_special_tokens": False,
                        "neuronpedia_id": None}}
    if architecture == "topk":
        cfg["k"] = k if k is not None else max(1, d_sae // 8)
        cfg["rescale_acts_by_decoder_norm"] = False
    (directory / "cfg.json").write_text(json.dumps(cfg, indent=2))
    save_file({n: v.contiguous() for n, v in t.items()}, str(directory / "sae_weights.safetensors"),
              metadata={"format": "pt"})
    return directory
