"""IR -> filled `SteercHooks`: the tensors and spec of every hook module of a program.

`build_hooks` is shared by `steerc.runtime.apply` (in-process reference) and the compiler's
hooks backend (which saves `hooks.spec` into config.json and `hooks.state_dict()` as
`steering.safetensors`, prefixed `steerc.`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from steerc.arch.hookpoint import HookPoint
from steerc.compiler.edits import orthonormal_basis
from steerc.compiler.ir import Intervention, Op, Program
from steerc.compiler.validate import hook_problems
from steerc.diagnostics import DiagnosticError
from steerc.runtime.modeling_steerc import OP_ADD, OP_SCALE, OP_SET, POSITIONS, SteercHooks

_CODES = {Op.ADD: OP_ADD, Op.SET: OP_SET, Op.SCALE: OP_SCALE}


def resolve_saes(program: Program, saes) -> dict:
    """alias -> SAE from a mapping (values: SAE objects or paths) or a loader `f(binding)`."""
    if not isinstance(saes, Mapping):
        return {b.alias: saes(b) for b in program.saes}
    out = {}
    for alias, sae in saes.items():
        if isinstance(sae, (str, Path)):
            from steerc.saes.load import load_sae

            sae = load_sae(sae)
        out[alias] = sae
    return out


def _basis(rows: list[torch.Tensor], d: int) -> torch.Tensor:
    """[d, r] orthonormal basis of the rows' span (`edits.orthonormal_basis`, the rule the
    weights target uses too); [d, 0] for no rows."""
    return orthonormal_basis(rows) if rows else torch.zeros(d, 0)


def _decoder_row(sae, index: int) -> torch.Tensor:
    return sae.select([index]).W_dec[0].float()


def _hook_of(sae) -> str:
    return sae.cfg.hook_name


def _group(slice_, d_in: int) -> tuple[dict, dict]:
    """FeatureSlice -> (group spec, buffers)."""
    arch = slice_.architecture
    c = len(slice_.indices)
    spec = {"architecture": arch, "d_in": d_in, "n": c, "d_sae": None, "k": slice_.k,
            "apply_b_dec_to_input": bool(slice_.apply_b_dec_to_input),
            "normalize": slice_.normalize_activations}
    t = {"b_dec": slice_.b_dec}
    if arch == "topk":
        spec["d_sae"] = slice_.full_W_enc.shape[1]
        t.update(W_enc=slice_.full_W_enc, b_enc=slice_.full_b_enc,
                 cols=torch.tensor(slice_.indices, dtype=torch.long))
    else:
        t.update(W_enc=slice_.W_enc, b_enc=slice_.b_enc)
    if arch == "jumprelu":
        t["threshold"] = slice_.threshold
    if arch == "gated":
        t.update(r_mag=slice_.r_mag, b_mag=slice_.b_mag)
    return spec, t


def build_hooks(program: Program, saes, config, adapter, *, interventions=None,
                phase_module: str = "") -> SteercHooks:
    """Hook modules applying `interventions` (default: all of the program's) exactly.

    `saes`: alias -> SAE (anything with `.cfg.hook_name` and `.select(indices)`), alias ->
    path, or a loader `f(SaeBinding) -> SAE`. Errors (E493-E497, `validate.hook_problems`)
    are DiagnosticErrors.
    """
    saes = resolve_saes(program, saes)
    ivs = tuple(program.interventions if interventions is None else interventions)
    problems = hook_problems(ivs, {a: (_hook_of(s), s.cfg.d_in) for a, s in saes.items()})
    if problems:
        raise DiagnosticError(problems[:1])
    d = adapter.d_model(config)
    everywhere = [iv for iv in ivs if iv.op == Op.PROJECT_OUT and iv.everywhere]
    points: dict[str, list[Intervention]] = {}
    for iv in ivs:
        if not (iv.op == Op.PROJECT_OUT and iv.everywhere):
            for p in iv.points:
                points.setdefault(p, []).append(iv)
    # Conditions read at an earlier hook point: that point exports the condition's activation.
    exports: dict[str, list[tuple[str, int]]] = {}
    for point, items in points.items():
        for iv in items:
            c = iv.condition
            if c is not None and c.hook != point:
                key = (c.feature.sae, c.feature.index)
                if key not in exports.setdefault(c.hook, []):
                    exports[c.hook].append(key)
    order = sorted(set(points) | set(exports), key=HookPoint.parse)  # registration = forward order
    index = {p: i for i, p in enumerate(order)}

    hook_specs, hook_tensors = [], []
    for point in order:
        spec, t = _build_point(point, points.get(point, []), saes, config, adapter, d,
                               exports.get(point, []), exports, index)
        hook_specs.append(spec)
        hook_tensors.append(t)
    Q_every = _basis([_decoder_row(saes[iv.feature.sae], iv.feature.index) for iv in everywhere], d)
    spec = {"version": 1, "d": d, "phase_module": phase_module,
            "everywhere_rank": Q_every.shape[1],
            "everywhere_sites": adapter.write_sites(config) if everywhere else [],
            "hooks": hook_specs}
    hooks = SteercHooks(spec)
    with torch.no_grad():
        hooks.Q_everywhere.copy_(Q_every)
        for module, t in zip(hooks.hooks, hook_tensors):
            for name, value in t["hook"].items():
                getattr(module, name).copy_(value)
            for g, gt in zip(module.groups, t["groups"]):
                for name, value in gt.items():
                    getattr(g, name).copy_(value)
    return hooks


def _build_point(point, items, saes, config, adapter, d_model, export_here, exports, index):
    """One hook point: its groups, op table, local ablations, and the condition columns it
    exports to later points (`export_here`) or imports from earlier ones (`exports`)."""
    # The point's width: d_model for residual points, n_heads * d_head at attn.hook_z.
    d = saes[items[0].feature.sae if items else export_here[0][0]].cfg.d_in
    site = adapter.edit_site(point, config)
    ops = [iv for iv in items if iv.op != Op.PROJECT_OUT]
    ablations = [iv for iv in items if iv.op == Op.PROJECT_OUT]
    # Features whose activation is read here: set/scale targets and condition features.
    needed: dict[str, set[int]] = {}
    for iv in ops:
        if iv.op.reads_activation:
            needed.setdefault(iv.feature.sae, set()).add(iv.feature.index)
        if iv.condition is not None:
            cf = iv.condition.feature
            if iv.condition.hook == point:
                needed.setdefault(cf.sae, set()).add(cf.index)
    for alias, idx in export_here:
        needed.setdefault(alias, set()).add(idx)
    groups, group_t, column = [], [], {}
    offset = 1  # column 0 of the activation table is the constant "no feature"
    for alias in sorted(needed):
        sae = saes[alias]
        sl = sae.select(sorted(needed[alias]))
        gspec, gt = _group(sl, sae.cfg.d_in)
        groups.append(gspec)
        group_t.append(gt)
        for j, idx in enumerate(sl.indices):
            column[(alias, idx)] = offset + j
        offset += len(sl.indices)
    # Imported condition columns follow this point's own table, in `imports` order.
    imports, foreign = [], {}
    for iv in ops:
        c = iv.condition
        if c is not None and c.hook != point and c.hook not in dict(imports):
            imports.append((c.hook, len(exports[c.hook])))
    base = offset
    for hook, count in imports:
        for j, key in enumerate(exports[hook]):
            foreign[(hook,) + key] = base + j
        base += count
    n = len(ops)
    t = {"W_dec": torch.zeros(n, d), "op_code": torch.zeros(n, dtype=torch.long),
         "op_value": torch.zeros(n), "op_src": torch.zeros(n, dtype=torch.long),
         "op_pos": torch.zeros(n, dtype=torch.long), "cond_src": torch.zeros(n, dtype=torch.long),
         "cond_threshold": torch.zeros(n)}
    for r, iv in enumerate(ops):
        key = (iv.feature.sae, iv.feature.index)
        t["W_dec"][r] = _decoder_row(saes[iv.feature.sae], iv.feature.index)
        t["op_code"][r] = _CODES[iv.op]
        t["op_value"][r] = float(iv.value)
        t["op_src"][r] = column.get(key, 0) if iv.op != Op.ADD else 0
        t["op_pos"][r] = POSITIONS[iv.positions]
        if iv.condition is not None:
            c = iv.condition
            key = (c.feature.sae, c.feature.index)
            t["cond_src"][r] = column[key] if c.hook == point else foreign[(c.hook,) + key]
            t["cond_threshold"][r] = float(iv.condition.threshold)
    scopes = {iv.positions for iv in ablations}  # one scope: hook_problems refused others (E496)
    Q = _basis([_decoder_row(saes[iv.feature.sae], iv.feature.index) for iv in ablations], d)
    t["Q_local"] = Q
    t["export_src"] = torch.tensor([column[k] for k in export_here], dtype=torch.long)
    spec = {"hook": point, "path": site.path, "where": site.where,
            "add_input_of": site.add_input_of, "residual": HookPoint.parse(point).residual_space and d == d_model,
            "d": d, "n_ops": n, "local_rank": Q.shape[1],
            "local_positions": scopes.pop() if scopes else "all", "groups": groups,
            "exports": len(export_here), "imports": [[index[h], c] for h, c in imports]}
    return spec, {"hook": t, "groups": group_t}
