"""steerc hook modules: the exact steering math, attached to a transformers model.

SELF-CONTAINED: imports only torch. This file is copied verbatim into compiled checkpoints
(as a flat sibling of the generated modeling file), and steerc's own runtime uses the same
code, so the shipped math is the tested math. It is also the one copy of the SAE encoder
math (`sae_normalize`, `sae_activate`, `gated_activate`): `steerc.saes` encodes with these
functions, so the activations `steerc verify` measures are the ones a hook computes.

API
---
    hooks = SteercHooks(spec)          # zero buffers of the right shapes, from a JSON spec
    handle = install(model, hooks)     # registers torch hooks; register=True (default) also
                                       # adds `model.steerc = hooks`, so its buffers are in
                                       # model.state_dict() as `steerc.*` and from_pretrained
                                       # loads them from steering.safetensors
    handle.remove()                    # removes every torch hook (and `model.steerc`)

A checkpoint wrapper is then::

    class SteercLlamaForCausalLM(LlamaForCausalLM):
        config_class = SteercLlamaConfig
        def __init__(self, config):
            super().__init__(config)
            install(self, SteercHooks(config.steerc))   # config.steerc = hooks.spec

Spec (JSON; `SteercHooks.spec` round-trips it)::

    {"version": 1, "d": d_model,
     "phase_module": "",                  # module whose forward pre-hook reads the KV cache
     "everywhere_rank": r, "everywhere_sites": [module paths whose output is a residual write],
     "hooks": [{"hook": "blocks.1.hook_resid_post", "path": "model.layers.1", "where": "out",
                "add_input_of": null, "residual": true, "d": d, "n_ops": n,
                "local_rank": m, "local_positions": "all",
                "exports": e, "imports": [[j, count], ...],
                "groups": [{"architecture": "jumprelu", "d_in": d, "n": c, "d_sae": D,
                            "k": null, "apply_b_dec_to_input": false, "normalize": "none"}]}]}

Buffers (state-dict names under the model when registered, all persistent):
    steerc.Q_everywhere              [d, r]   orthonormal basis removed from every residual write
    steerc.hooks.<i>.W_dec           [n, d]   decoder row d_i of each op row
    steerc.hooks.<i>.op_code         [n] i64  0 add, 1 set_activation, 2 scale_activation
    steerc.hooks.<i>.op_value        [n]      alpha / target value / scale factor
    steerc.hooks.<i>.op_src          [n] i64  column of a_i in the hook's activation table (0: none)
    steerc.hooks.<i>.op_pos          [n] i64  0 all, 1 prompt, 2 generated
    steerc.hooks.<i>.cond_src        [n] i64  column of the condition feature (0: unconditional)
    steerc.hooks.<i>.cond_threshold  [n]      the op applies where a_cond > threshold
    steerc.hooks.<i>.Q_local         [d, m]   orthonormal basis of this point's local ablations
    steerc.hooks.<i>.export_src      [e] i64  columns of A handed to later hooks (conditions
                                              read at an earlier hook point)
    steerc.hooks.<i>.groups.<g>.W_enc [d_in, c] (topk: [d_in, d_sae], the full encoder)
    steerc.hooks.<i>.groups.<g>.b_enc [c] (topk: [d_sae]), .b_dec [d_in],
        .threshold [c] (jumprelu), .r_mag/.b_mag [c] (gated), .cols [c] i64 (topk: which
        full columns are selected)

Activation table: column 0 is a constant 0 (the "no feature" slot), then each group's c
columns in order, then the columns imported from earlier hooks (`imports`: hook index j and
how many columns hook j exports, in order); `op_src`/`cond_src` index it. Hooks are listed
(and registered) in forward order, so an exporting hook always runs before its importers.

Positions: a forward pre-hook on `phase_module` (the CausalLM itself by default) reads the
`cache`/`past_key_values` argument of every call: empty or absent cache -> phase "prompt"
(prefill), cache already holding tokens -> "generated". Every token of one call shares the
phase, which is exactly "tokens processed while the KV cache is empty / non-empty".
Consequence: `generate(..., use_cache=False)` re-runs the whole sequence with no cache at
every step, so every step is a prefill and `generated`-scoped rules never fire there.

Saving (compiler): `hooks.checkpoint_tensors()` gives the `steerc.`-prefixed tensors for
`steering.safetensors`; `hooks.spec` goes into config.json (e.g. as `config.steerc`).
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

OP_ADD, OP_SET, OP_SCALE = 0, 1, 2
POSITIONS = {"all": 0, "prompt": 1, "generated": 2}
LN_EPS = 1e-5  # SAELens and OpenAI layer_norm normalisation: (x - mu) / (std + 1e-5)


def sae_normalize(x, kind: str):
    """An SAE's input normalisation: (x_n, s, mu), x_n what its encoder reads. A
    reconstruction maps back to x space as x_hat * s + mu (mu None: 0), so a change of it is
    scaled by s (..., 1): 1 for "none", |x|/sqrt(d) for constant_norm_rescale (SAELens:
    x * sqrt(d) / |x| per token), std(x) for layer_norm (unbiased std, eps only on the way in)."""
    if kind == "constant_norm_rescale":
        s = x.norm(dim=-1, keepdim=True) / math.sqrt(x.shape[-1])
        return x / s, s, None
    if kind == "layer_norm":
        mu, std = x.mean(dim=-1, keepdim=True), x.std(dim=-1, keepdim=True)
        return (x - mu) / (std + LN_EPS), std, mu
    if kind == "none":
        return x, x.new_ones(x.shape[:-1] + (1,)), None
    raise ValueError(f"steerc: unknown SAE normalisation {kind!r}")


def sae_activate(pre, architecture: str, threshold=None, k=None, cols=None):
    """Activations from pre-activations pre = x' W_enc + b_enc for standard (ReLU), jumprelu
    (ReLU where pre > threshold), linear (pre itself: a named direction) and topk. TopK is exact: a_i = ReLU(pre_i) if i is among the
    indices torch.topk(pre, k) returns over ALL d_sae columns of `pre`, else 0; `cols` (c,)
    picks the columns to return ((..., c)), else all ((..., d_sae)). Gated: `gated_activate`."""
    if architecture == "standard":
        return torch.relu(pre)
    if architecture == "linear":  # a named direction: its coefficient, of either sign
        return pre
    if architecture == "jumprelu":
        return torch.relu(pre) * (pre > threshold)
    if architecture == "topk":
        top = torch.topk(pre, min(int(k), pre.shape[-1]), dim=-1)
        if cols is None:
            return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
        member = (top.indices.unsqueeze(-2) == cols.unsqueeze(-1)).any(-1)   # (..., c)
        return torch.relu(pre[..., cols]) * member
    raise ValueError(f"steerc: unknown SAE architecture {architecture!r}")


def gated_activate(lin, b_gate, r_mag, b_mag):
    """Gated SAE from lin = x' W_enc: 1[lin + b_gate > 0] * ReLU(lin * exp(r_mag) + b_mag)
    (the magnitude path's weights are W_enc * exp(r_mag), so x'(W_enc exp(r_mag)) is
    lin * exp(r_mag), without a second (d_in, d_sae) matrix)."""
    mag = torch.relu(lin * torch.exp(r_mag) + b_mag)
    return (lin + b_gate > 0).to(lin.dtype) * mag


class FeatureGroup(nn.Module):
    """The selected features of one SAE at one hook point: `forward(x) -> (a, s)`.

    a (..., c): the SAE's activations of the selected features on x, exactly as the SAE
    computes them (standard ReLU, JumpReLU, gated, TopK). s (..., 1): the factor that maps
    a change of the SAE's reconstruction back to x space (1, or |x|/sqrt(d) for
    constant_norm_rescale, or std(x) for layer_norm).

    TopK semantics (exact, SAELens's): a_i = ReLU(pre_i) if i is among the indices that
    torch.topk(pre, k) returns over ALL d_sae pre-activations, else 0; so the full encoder
    is carried and `cols` picks the selected features.
    """

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        arch, d_in, c = spec["architecture"], spec["d_in"], spec["n"]
        width = spec["d_sae"] if arch == "topk" else c
        self.register_buffer("W_enc", torch.zeros(d_in, width))
        self.register_buffer("b_enc", torch.zeros(width))
        self.register_buffer("b_dec", torch.zeros(d_in))
        if arch == "jumprelu":
            self.register_buffer("threshold", torch.zeros(c))
        if arch == "gated":
            self.register_buffer("r_mag", torch.zeros(c))
            self.register_buffer("b_mag", torch.zeros(c))
        if arch == "topk":
            self.register_buffer("cols", torch.zeros(c, dtype=torch.long))

    def forward(self, x):
        xn, s, _ = sae_normalize(x, self.spec["normalize"])
        if self.spec["apply_b_dec_to_input"]:
            xn = xn - self.b_dec
        arch = self.spec["architecture"]
        lin = xn @ self.W_enc                                        # (..., c) or (..., d_sae)
        if arch == "gated":  # b_enc holds b_gate
            return gated_activate(lin, self.b_enc, self.r_mag, self.b_mag), s
        threshold = self.threshold if arch == "jumprelu" else None
        cols = self.cols if arch == "topk" else None
        return sae_activate(lin + self.b_enc, arch, threshold, self.spec["k"], cols), s


class SteerHook(nn.Module):
    """Every steerc edit at one hook point, as one fused module: `forward(x, phase, Q_every)`.

    With A the activation table of the incoming x (all activations and conditions read x
    before any edit) and, per op row r, coefficient
        add: value_r        set: (value_r - a_r) * s_r        scale: (value_r - 1) * a_r * s_r
    masked by its condition (a_cond > threshold) and position scope:
        x1 = x + coef @ W_dec                       (B, T, n) @ (n, d): one matmul
        x2 = x1 - (x1 @ Q_local) @ Q_local^T        local ablations (one subspace projection)
        x3 = x2 - (x2 @ Q_every) @ Q_every^T        `everywhere` ablation (residual hooks only)
    """

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        n, d = spec["n_ops"], spec["d"]
        self.groups = nn.ModuleList(FeatureGroup(g) for g in spec["groups"])
        self.register_buffer("W_dec", torch.zeros(n, d))
        self.register_buffer("op_code", torch.zeros(n, dtype=torch.long))
        self.register_buffer("op_value", torch.zeros(n))
        self.register_buffer("op_src", torch.zeros(n, dtype=torch.long))
        self.register_buffer("op_pos", torch.zeros(n, dtype=torch.long))
        self.register_buffer("cond_src", torch.zeros(n, dtype=torch.long))
        self.register_buffer("cond_threshold", torch.zeros(n))
        self.register_buffer("Q_local", torch.zeros(d, spec["local_rank"]))
        self.register_buffer("export_src", torch.zeros(spec.get("exports", 0), dtype=torch.long))
        self.index = 0        # position in SteercHooks.hooks (the key of its exports)
        self.exports = {}     # shared by all hooks of one SteercHooks: index -> (B, T, e)

    def activations(self, x):
        """The activation table A (..., 1 + sum c) and scale table S (same shape)."""
        cols, scales = [x.new_zeros(x.shape[:-1] + (1,))], [x.new_ones(x.shape[:-1] + (1,))]
        for g in self.groups:
            a, s = g(x)
            cols.append(a.to(x.dtype))
            scales.append(s.expand_as(a).to(x.dtype))
        return torch.cat(cols, -1), torch.cat(scales, -1)

    def forward(self, x, phase: int = 1, Q_every=None):
        out = x
        if self.spec.get("exports", 0):
            A, S = self.activations(x)
            self.exports[self.index] = A[..., self.export_src]
        if self.spec["n_ops"]:
            if not self.spec.get("exports", 0):
                A, S = self.activations(x)
            if self.spec.get("imports"):
                A = torch.cat([A] + [self.exports[j] for j, _ in self.spec["imports"]], -1)
            a, s = A[..., self.op_src], S[..., self.op_src]        # (B, T, n)
            v = self.op_value.to(x.dtype)
            coef = torch.where(self.op_code == OP_SET, v - a, (v - 1) * a) * s
            coef = torch.where(self.op_code == OP_ADD, v.expand_as(a), coef)
            cond = (A[..., self.cond_src] > self.cond_threshold.to(x.dtype)) | (self.cond_src == 0)
            pos = (self.op_pos == 0) | (self.op_pos == phase)
            coef = coef * (cond & pos).to(x.dtype)
            out = x + coef @ self.W_dec.to(x.dtype)
        lp = POSITIONS[self.spec["local_positions"]]
        if self.spec["local_rank"] and (lp == 0 or lp == phase):
            Q = self.Q_local.to(x.dtype)
            out = out - (out @ Q) @ Q.T
        if Q_every is not None and self.spec["residual"]:
            out = project_out(out, Q_every)
        return out


def project_out(x, Q):
    """x - (x Q) Q^T: remove the span of Q's orthonormal columns, Q [d, r]."""
    Q = Q.to(x.dtype)
    return x - (x @ Q) @ Q.T


class _State:
    phase = POSITIONS["prompt"]


class SteercHooks(nn.Module):
    """Every hook module of a steered model plus the everywhere basis; built from a spec."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec
        self.state = _State()
        self.register_buffer("Q_everywhere", torch.zeros(spec["d"], spec.get("everywhere_rank", 0)))
        self.hooks = nn.ModuleList(SteerHook(h) for h in spec["hooks"])
        self.exports = {}
        for i, h in enumerate(self.hooks):
            h.index, h.exports = i, self.exports

    def checkpoint_tensors(self, prefix: str = "steerc.") -> dict:
        """Every buffer, named as in the model's state dict once installed (contiguous, CPU)."""
        return {prefix + k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}


def cache_length(cache) -> int:
    """Tokens already held by a KV cache (Cache object or legacy tuple); 0 for None."""
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    try:
        return int(cache[0][0].shape[-2])
    except (TypeError, IndexError, AttributeError):
        return 0


def _find_cache(module, args, kwargs):
    for name in ("cache", "past_key_values"):
        if kwargs.get(name) is not None:
            return kwargs[name]
    if len(args) > 1:  # positional call: bind to the (decorated) forward's signature
        bound = inspect.signature(module.forward).bind_partial(*args, **kwargs).arguments
        return bound.get("cache", bound.get("past_key_values"))
    return None


def _replace_first(value, new):
    return (new,) + tuple(value[1:]) if isinstance(value, tuple) else new


def _first(value):
    return value[0] if isinstance(value, tuple) else value


class SteercHandle:
    """What `install` returns: `remove()` detaches everything it attached."""

    def __init__(self, model, hooks: SteercHooks, registered: bool):
        self.model, self.hooks, self.registered, self.handles = model, hooks, registered, []

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        if self.registered and getattr(self.model, "steerc", None) is self.hooks:
            del self.model.steerc


def install(model: nn.Module, hooks: SteercHooks, register: bool = True) -> SteercHandle:
    """Attach `hooks` to `model` (module paths in the spec are relative to `model`).

    Order at one module: everywhere projection of a write, then the steer hook, so a hook
    point reads the write as an orthogonalized writer would produce it.
    """
    if register:
        model.steerc = hooks
    handle = SteercHandle(model, hooks, register)
    spec, state = hooks.spec, hooks.state
    reg = handle.handles.append
    Q_every = hooks.Q_everywhere if spec.get("everywhere_rank", 0) else None

    def phase_hook(module, args, kwargs):
        hooks.exports.clear()
        state.phase = POSITIONS["generated" if cache_length(_find_cache(module, args, kwargs)) else "prompt"]

    reg(model.get_submodule(spec.get("phase_module", "")).register_forward_pre_hook(phase_hook, with_kwargs=True))

    if Q_every is not None:
        def write_hook(module, args, output):
            return _replace_first(output, project_out(_first(output), hooks.Q_everywhere))
        for path in spec["everywhere_sites"]:
            reg(model.get_submodule(path).register_forward_hook(write_hook))

    captures = []
    for hook in hooks.hooks:
        site = model.get_submodule(hook.spec["path"])
        if hook.spec["where"] == "in":
            def pre(module, args, kwargs, hook=hook):
                Qe = hooks.Q_everywhere if Q_every is not None else None
                if args:
                    return (hook(args[0], state.phase, Qe),) + tuple(args[1:]), kwargs
                kwargs = dict(kwargs, hidden_states=hook(kwargs["hidden_states"], state.phase, Qe))
                return args, kwargs
            reg(site.register_forward_pre_hook(pre, with_kwargs=True))
        elif hook.spec.get("add_input_of"):
            slot = {}
            def capture(module, args, kwargs, slot=slot):
                slot["x"] = args[0] if args else kwargs["hidden_states"]
            captures.append((hook.spec["add_input_of"], capture))
            def post_sum(module, args, output, hook=hook, slot=slot):
                w = _first(output)
                x = slot.pop("x") + w                                  # resid_mid
                Qe = hooks.Q_everywhere if Q_every is not None else None
                return _replace_first(output, w + (hook(x, state.phase, Qe) - x))
            reg(site.register_forward_hook(post_sum))
        else:
            def post(module, args, output, hook=hook):
                Qe = hooks.Q_everywhere if Q_every is not None else None
                return _replace_first(output, hook(_first(output), state.phase, Qe))
            reg(site.register_forward_hook(post))
    # Captures run after every input edit registered above on the same module.
    for path, capture in captures:
        reg(model.get_submodule(path).register_forward_pre_hook(capture, with_kwargs=True))
    return handle
