"""The tensors of a `--target lora` adapter: `weight_plan.edit_terms` as LoRA factors.

`adapter_tensors(job)` returns, per adapter tensor (PEFT's names without the
`base_model.model.` prefix), its dtype, shape and producer, plus the adapter's config facts.
The math is in `steerc.targets.lora`'s docstring; each factor is computed in fp32 from the
one base tensor it needs (embeddings a block of rows at a time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from steerc.compiler import edits
from steerc.compiler.rulegroups import counted, group_by_rule
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.targets.base import Job


@dataclass
class AdapterTensors:
    """What the adapter holds. `tensors`: name -> (dtype, shape, producer); `kinds`: base
    weight key -> linear|conv1d|embedding for every module the adapter wraps; `records`:
    the audit trail (one per base tensor the adapter changes)."""

    plan: object
    rank: int = 1
    lora_bias: bool = False
    fan_in_fan_out: bool = False
    modules_to_save: list[str] = field(default_factory=list)
    tensors: dict[str, tuple] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)

    def diagnostics(self, code: str, keys: set[str], message: str, hint: str) -> list[Diagnostic]:
        """`message` once per source rule whose weight edit writes one of `keys`."""
        los = [lo for lo in self.plan.weight_edits if set(lo.tensors) & keys]
        groups = group_by_rule(los, key=lambda lo: lo.intervention) or ()
        out = []
        for g in groups:
            n = f" ({counted(len(g), 'feature')})" if len(g) > 1 else ""
            out.append(Diagnostic(code, f"`{g.origin}`{n} cannot be lowered to a LoRA adapter: "
                                  f"{message}", g.span, hint))
        return out or [Diagnostic(code, message, None, hint)]


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32)


def _pad(cols: list[torch.Tensor], rank: int, rows: int) -> torch.Tensor:
    """[rows, rank] from the given columns (each [rows, k]), zero past them."""
    out = torch.zeros(rows, rank)
    at = 0
    for c in cols:
        out[:, at: at + c.shape[1]] = c
        at += c.shape[1]
    return out


def adapter_tensors(job: Job) -> AdapterTensors:
    """Every adapter tensor of `job`'s exact edits; E414 for a LoRA bias beside an
    embedding LoRA (PEFT cannot load that adapter)."""
    from steerc.compiler.weight_plan import edit_terms

    b = job.base
    config, adapter, base = b.config, b.adapter, b.checkpoint
    terms = edit_terms(job.plan, config, adapter, job.directions)
    d, Q = terms.d, terms.Q
    made = AdapterTensors(job.plan)
    writers = {w.weight: w for w in adapter.writers(config)}
    embs = {e.weight: e for e in adapter.embeddings(config)}
    emb_adds = {k: v for k, v in terms.adds.items() if k in embs}
    r = 0 if Q is None else Q.shape[1]
    made.rank = max(1, r + (1 if emb_adds else 0))
    R = made.rank
    Qcols = [] if Q is None else [-Q]  # lora_B columns of the projection

    # Bias deltas: every writer bias, and every bias slot an add folds into.
    bias_keys = {w.bias for w in writers.values() if w.bias} | {k for k in terms.adds if k not in embs}
    bias_delta: dict[str, torch.Tensor] = {}
    for key in sorted(bias_keys):
        a = terms.adds.get(key, torch.zeros(d))
        if Q is None:
            delta = a
        else:
            x = a + (_f32(base.tensor(key)) if base.has(key) else 0)
            delta = a - Q @ (Q.T @ x)
        if bool((delta != 0).any()):  # a zero delta needs no LoRA bias (no base bias, no add)
            bias_delta[key] = delta
    touched_embs = set(embs) if Q is not None else set(emb_adds)
    if bias_delta and touched_embs:
        raise DiagnosticError(made.diagnostics(
            "E414", set(bias_delta) | touched_embs,
            f"it changes {len(bias_delta)} writer bias{'es' * (len(bias_delta) != 1)} (a LoRA bias, "
            f"`lora_bias`) "
            f"and {counted(len(touched_embs), 'embedding')}; PEFT's `lora_bias` is one flag per "
            "adapter and its embedding layers reject it, so no PEFT adapter holds both",
            "use --target weights (a plain checkpoint with the same edit)"))
    made.lora_bias = bool(bias_delta)

    B = _pad([-Q] if Q is not None else [], R, d)  # every writer's lora_B (the add columns are 0)
    modules = set(writers) if Q is not None else set()
    modules |= {k[: -len("bias")] + "weight" for k in bias_delta}
    for wkey in sorted(modules):
        layout = writers[wkey].layout if wkey in writers else "linear"
        made.kinds[wkey] = layout
        made.fan_in_fan_out |= layout == "conv1d"
        mod = wkey[: -len(".weight")]
        made.tensors[f"{mod}.lora_A.weight"] = ("F32", (R, _in_features(base, wkey, layout, d)),
                                                _writer_A(base, wkey, layout, Q, R))
        made.tensors[f"{mod}.lora_B.weight"] = ("F32", (d, R), _const(B))
        if made.lora_bias:  # PEFT gives every lora_B a bias when the flag is on
            bkey = mod + ".bias"
            made.tensors[f"{mod}.lora_B.bias"] = ("F32", (d,), _const(bias_delta.get(bkey, torch.zeros(d))))
    for ekey in sorted(touched_embs):
        V = base.info(ekey).shape[0]
        made.kinds[ekey] = "embedding"
        mod = ekey[: -len(".weight")]
        delta = emb_adds.get(ekey)
        cols = list(Qcols)
        if emb_adds:
            add = torch.zeros(d) if delta is None else delta
            if Q is not None:
                add = add - Q @ (Q.T @ add)  # the add is projected too (adds first, then P)
            cols.append(add[:, None])
        made.tensors[f"{mod}.lora_embedding_A"] = ("F32", (R, V), _embedding_A(base, ekey, Q, R, delta is not None))
        made.tensors[f"{mod}.lora_embedding_B"] = ("F32", (d, R), _const(_pad(cols, R, d)))
    if job.plan.untie:  # the head keeps the original embedding, even once merged
        from steerc.checkpoint.writer import RawCopy

        tied = next(e for e in adapter.embeddings(config) if e.tied_to)
        info = base.info(tied.weight)
        made.modules_to_save = [tied.tied_to[: -len(".weight")]]
        made.tensors[tied.tied_to] = (info.dtype, tuple(info.shape), lambda: RawCopy(tied.weight))
        made.records.append({"tensor": tied.tied_to, "ops": [{"op": "untie", "rule": f"copy of {tied.weight}"}]})
    for key in sorted(set(made.kinds) | set(bias_delta)):
        ops = terms.ops.get(key) or [{"op": "project_out", "rule": "everywhere"}]
        made.records.append({"tensor": key, "ops": ops})
    return made


def _in_features(base, key: str, layout: str, d: int) -> int:
    shape = base.info(key).shape
    return shape[1] if layout == "linear" else shape[0]


def _const(t: torch.Tensor):
    t = t.to(torch.float32).contiguous()
    return lambda: t


def _writer_A(base, key: str, layout: str, Q, R: int):
    """lora_A [R, in]: Q^T W for a Linear W [d, in], (W Q)^T for a Conv1D W [in, d]."""
    def run() -> torch.Tensor:
        info = base.info(key)
        n_in = info.shape[1] if layout == "linear" else info.shape[0]
        A = torch.zeros(R, n_in)
        if Q is not None:
            W = _f32(base.tensor(key))
            A[: Q.shape[1]] = Q.T @ W if layout == "linear" else (W @ Q).T
        return A
    return run


def _embedding_A(base, key: str, Q, R: int, ones: bool):
    """lora_embedding_A [R, V]: (E Q)^T, then a row of ones where an add lands (else 0)."""
    def run() -> torch.Tensor:
        V = base.info(key).shape[0]
        A = torch.zeros(R, V)
        if Q is not None:
            for a in range(0, V, edits.ROWS):
                b = min(a + edits.ROWS, V)
                A[: Q.shape[1], a:b] = (_f32(base.read_rows(key, a, b)) @ Q).T
        if ones:
            A[R - 1] = 1.0
        return A
    return run
