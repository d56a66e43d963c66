"""Weight-edit planning, below every target: a plan's exact lowerings as tensor producers.

What a target writes (a full checkpoint, an adapter, a control vector) it takes from here:
`plan_weight_edits` turns the plan's `weights` lowerings into producers and a config patch,
`patched_config` applies the patch, `check_edit_targets` refuses tensors the math cannot
take (E608/E609) and `directions_from` reads decoder rows.

Order inside one tensor follows the IR semantics: adds first (they are steerc's own residual
writes), then the `everywhere` projection of every writer, bias and embedding, so an added
bias is projected too. A tied head is untied by writing the original embedding as the head.
Nothing here reads a whole model: each producer reads the one base tensor it edits
(embeddings and an untied head as a stream of row blocks / byte chunks; a projected writer
is read whole, then edited and handed on in row blocks: stream_edits.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from steerc.checkpoint.dtypes import FLOAT_DTYPES
from steerc.checkpoint.reader import ST_DTYPES, Checkpoint
from steerc.checkpoint.writer import Producer, RawCopy
from steerc.compiler import edits, stream_edits
from steerc.compiler.ir import FeatureId, Op
from steerc.compiler.plan import Plan, add_embedding, residual_slot
from steerc.diagnostics import Diagnostic, DiagnosticError

Directions = Callable[[FeatureId], torch.Tensor]  # feature -> decoder row d_i [d_model]


@dataclass(frozen=True)
class NewTensor:
    """A tensor the output gains (a bias the config flag creates, an untied head)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    produce: Producer


@dataclass
class WeightEdits:
    """What the weight backend writes: replaced tensors, new tensors, config.json changes,
    and the audit trail (one record per written tensor)."""

    replaced: dict[str, Producer] = field(default_factory=dict)
    new: dict[str, NewTensor] = field(default_factory=dict)
    config_patch: dict = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)


def _bias_dtype(base: Checkpoint, weight_key: str) -> str:
    return base.info(weight_key).dtype if base.has(weight_key) else "F32"


@dataclass(frozen=True)
class EditTerms:
    """The exact edits of a plan before they meet a tensor: `Q` [d, r], an orthonormal basis
    of every `everywhere` direction (None without one); `adds`: tensor key (a bias slot or
    an embedding) -> summed delta [d] (fp32); `ops`: tensor key -> its audit records; the
    config changes a bias slot needs (`flags`, `zero` biases, a `retarget` family). Every
    target that writes exact edits (a checkpoint, an adapter) starts here."""

    d: int
    Q: torch.Tensor | None
    adds: dict[str, torch.Tensor]
    ops: dict[str, list[dict]]
    flags: dict
    zero: frozenset[str]
    retarget: str | None


def edit_terms(plan: Plan, config, adapter, directions: Directions) -> EditTerms:
    """`plan`'s `weights` lowerings summed per tensor (adds) and per subspace (projections)."""
    d = adapter.d_model(config)
    adds: dict[str, torch.Tensor] = {}  # tensor -> summed delta [d] (fp32)
    ops: dict[str, list[dict]] = {}
    everywhere: list[torch.Tensor] = []
    flags: dict = {}
    zero: set[str] = set()
    retarget = None
    for lo in plan.weight_edits:
        iv = lo.intervention
        d_i = directions(iv.feature).to(torch.float32).reshape(-1)
        assert d_i.shape == (d,), (iv.feature, d_i.shape, d)
        rec = {"op": iv.op.value, "feature": str(iv.feature), "value": iv.value, "rule": iv.origin}
        if iv.op == Op.PROJECT_OUT:
            everywhere.append(d_i)
            for t in lo.tensors:
                ops.setdefault(t, []).append(rec)
            continue
        assert iv.op == Op.ADD
        for p in iv.points:
            slot = residual_slot(p)
            if slot == -1:
                key = add_embedding(adapter, config).weight
            else:
                bs = adapter.bias_slot(slot, config)
                key = bs.bias
                flags.update(bs.config_flags)
                zero |= set(bs.zero_biases)
                retarget = bs.retarget_model_type or retarget
            adds[key] = adds.get(key, torch.zeros(d)) + iv.value * d_i
            ops.setdefault(key, []).append(rec)
    Q = edits.orthonormal_basis(everywhere) if everywhere else None
    return EditTerms(d, Q, adds, ops, flags, frozenset(zero), retarget)


def plan_weight_edits(plan: Plan, program, config, adapter, base: Checkpoint,
                      directions: Directions) -> WeightEdits:
    """The tensors and config changes that realise every `weights` lowering of `plan`."""
    out = WeightEdits()
    terms = edit_terms(plan, config, adapter, directions)
    d, Q, adds, ops = terms.d, terms.Q, terms.adds, terms.ops
    flags, zero, retarget = terms.flags, terms.zero, terms.retarget

    writer_w = {w.weight: w for w in adapter.writers(config)}
    writer_b = {w.bias for w in adapter.writers(config) if w.bias}
    emb = {e.weight: e for e in adapter.embeddings(config)}
    bias_keys = set(writer_b) | {k for k in adds if k not in emb}
    touched = set(adds) | (set(writer_w) | writer_b | set(emb) if Q is not None else set())
    touched |= {k for k in bias_keys if Q is not None}

    scratch = stream_edits.Scratch()  # reused by the lazy streams below (per thread)

    def _writer_stream(key: str):
        info = base.info(key)  # read lazily, when the writer reaches this tensor
        t = base.read_rows(key, 0, info.shape[0], into=scratch.get("writer.read", info.shape, ST_DTYPES[info.dtype]))
        yield from stream_edits.writer_blocks(t, Q, writer_w[key].layout, t.dtype, scratch)

    def producer(key: str) -> Producer:
        def run() -> torch.Tensor:
            if key in emb:  # large [V, d] tables: read, edit and write a block of rows at a time
                info = base.info(key)
                dt = ST_DTYPES[info.dtype]
                return stream_edits.embedding_blocks(
                    lambda a, b: base.read_rows(key, a, b, into=scratch.get("emb.read", (b - a,) + info.shape[1:], dt)),
                    info.shape, adds.get(key), Q, dt, scratch)
            if Q is not None and key in writer_w and key not in adds:  # row blocks, in place
                return _writer_stream(key)
            if base.has(key):
                t = base.tensor(key)
                dtype = t.dtype
            else:  # a bias the config flag creates
                t, dtype = torch.zeros(d), ST_DTYPES[_bias_dtype(base, key[: -len("bias")] + "weight")]
            x = t.to(torch.float32)
            if key in adds:
                x = edits.add_to_rows(x, adds[key]) if key in emb else edits.add_to_bias(x, adds[key])
            if Q is not None:
                if key in writer_w:
                    x = edits.project_writer(x, Q, writer_w[key].layout)
                elif key in emb:
                    x = edits.project_embedding(x, Q)
                elif key in bias_keys:
                    x = edits.project_bias(x, Q)
            return edits.finish(x, dtype)
        return run

    for key in sorted(touched):
        if base.has(key):
            out.replaced[key] = producer(key)
        else:
            w = key[: -len("bias")] + "weight"
            out.new[key] = NewTensor(key, _bias_dtype(base, w), (d,), producer(key))
        out.records.append({"tensor": key, "ops": ops.get(key, [{"op": "project_out", "rule": "everywhere"}])})
    for key in sorted(zero):
        if base.has(key) or key in out.new:
            continue
        w = key[: -len("bias")] + "weight"
        dt = _bias_dtype(base, w)
        shape = (base.info(w).shape[0],) if base.has(w) else (d,)
        out.new[key] = NewTensor(key, dt, shape, _zeros(shape, dt))
        out.records.append({"tensor": key, "ops": [{"op": "zero_bias", "rule": "config flag"}]})
    if plan.untie:
        tied = next(e for e in adapter.embeddings(config) if e.tied_to)
        head = tied.tied_to
        info = base.info(tied.weight)
        out.new[head] = NewTensor(head, info.dtype, info.shape, lambda: RawCopy(tied.weight))
        out.records.append({"tensor": head, "ops": [{"op": "untie", "rule": f"copy of {tied.weight}"}]})
        out.config_patch["tie_word_embeddings"] = False
    out.config_patch.update(flags)
    if retarget:
        out.config_patch["model_type"] = retarget
        out.config_patch["architectures"] = [_causal_lm_class(retarget)]
    return out


def _zeros(shape, dt: str) -> Producer:
    return lambda: torch.zeros(shape, dtype=ST_DTYPES[dt])


def _causal_lm_class(model_type: str) -> str:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]


def patched_config(raw_config: dict, config, adapter, we: WeightEdits) -> dict:
    """config.json after weight edits: flags switched on, tie cleared, re-targeted family."""
    patch = dict(we.config_patch)
    if "model_type" in patch and hasattr(adapter, "retarget_config"):
        cfg = adapter.retarget_config(config)
        patch.pop("model_type")
        patch.pop("architectures")
        for k in ("transformers_version",):
            if k in raw_config:
                cfg[k] = raw_config[k]
    else:
        cfg = dict(raw_config)
    # A base's `auto_map` names its own code, which steerc never runs nor ships: a user who
    # trusts a steerc output must only ever run steerc's code.
    cfg.pop("auto_map", None)
    cfg.update(patch)
    return cfg


def directions_from(saes: dict):
    """feature -> decoder row d_i (fp32 [d_in]), cached."""
    cache: dict[FeatureId, torch.Tensor] = {}

    def get(f: FeatureId) -> torch.Tensor:
        key = FeatureId(f.sae, f.index)
        if key not in cache:
            cache[key] = saes[f.sae].decoder_rows([f.index])[0].to(torch.float32)
        return cache[key]

    return get


def check_edit_targets(plan, base, config) -> None:
    """E608/E609 for a tensor a weight edit rewrites that the edit math cannot take: an
    integer/quantized dtype, or a shape without a d_model axis (wrong config)."""
    cfg = getattr(config, "text_config", None) or config
    d_model = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    for lo in plan.weight_edits:
        for name in lo.tensors:
            if not base.has(name):
                continue  # a bias slot the edit creates
            info = base.info(name)
            if info.dtype not in FLOAT_DTYPES:
                _fail("E608", f"tensor '{name}' of {base.root} is {info.dtype}; a weight edit needs a "
                             f"float tensor ({', '.join(FLOAT_DTYPES)})",
                     "compile against the unquantized checkpoint, or use --target hooks")
            if d_model and d_model not in info.shape:
                _fail("E609", f"tensor '{name}' of {base.root} has shape {list(info.shape)}, with no axis "
                             f"of the model's hidden size {d_model}", "config.json and weights disagree")


def _fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])
