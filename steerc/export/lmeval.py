"""A spec's additive rules as the steering file of lm-evaluation-harness's `steered` model.

    rows = plan_rows(program, config, adapter)          # DiagnosticError (E450-E456)
    write_pt(rows, directions, "steer.pt")              # or write_csv(rows, program, "steer.csv")

Target: `lm_eval/models/hf_steered.py` (EleutherAI/lm-evaluation-harness, read at commit
4e7e0d47f; the file last changed in 679b0f207, in every release since v0.4.9.2):

- `steer()` (lines 22-63) registers a forward hook on each module of
  `model.base_model.named_modules()` whose name is a hookpoint and replaces the module's
  output (element 0 of a tuple) with `hook(output)`; every forward call, every position.
- `add` (lines 124-131, 209-228): `acts + steering_coefficient * steering_vector`.
- `.pt` files (lines 101-106): `{hookpoint: {"action", "steering_vector", "steering_coefficient",
  "bias", "head_index"}}`, one entry per hookpoint; `add` asserts `bias is None` (line 126).
- `.csv` files (`derive_steer_config`, lines 146-207): columns loader, action, sparse_model,
  hookpoint, feature_index, steering_coefficient, sae_id; the vector is `W_dec[feature_index]`
  of the SAE that SAELens / sparsify load by name, and `bias` is always the SAE's `b_dec`
  (lines 187, 194), so since v0.4.9.2 every CSV `add` row fails that assert. Rows are keyed
  by hookpoint (line 200: a later row replaces an earlier one). In v0.4.8-v0.4.9.1 (commit
  d35008f15) `add` was a lambda over the loop variables, so with several hookpoints every
  hook added the last one's vector.

So steerc writes the `.pt` form (one summed vector per hook point, the decoder rows steerc
itself uses, `bias` None), and a `.csv` only for what it can hold exactly: one additive
feature of an SAE that lm-eval loads by SAELens name (lm-eval v0.4.8-v0.4.9.1).

What lm-eval cannot express is refused at the rule: `clamp`/`suppress` (its `clamp` sets the
projection of x - b_dec on the unit decoder direction; steerc's sets the SAE activation
a_i(x), which needs the encoder), `scale`, `ablate`, conditions, `on prompt|generated`, hook
points that are not a module's output, `enforce json` (decode-time code).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass

from steerc.compiler.ir import Intervention, Op, Program
from steerc.diagnostics import Diagnostic, DiagnosticError

FORMATS = (".pt", ".csv")
CSV_COLUMNS = ("loader", "action", "sparse_model", "hookpoint", "feature_index",
               "steering_coefficient", "sae_id", "description")
_OP_WORD = {Op.SET: "clamp/suppress", Op.SCALE: "scale", Op.PROJECT_OUT: "ablate"}


@dataclass(frozen=True)
class SteerRow:
    """One additive feature: `coefficient * d_feature` added to `hookpoint`'s output."""

    hookpoint: str          # module name under `model.base_model` (what lm-eval looks up)
    point: str              # steerc's hook point name
    intervention: Intervention

    @property
    def coefficient(self) -> float:
        return float(self.intervention.value)


def _refuse_op(iv: Intervention) -> Diagnostic:
    word = _OP_WORD.get(iv.op, iv.op.value)
    if iv.op is Op.SET:
        why = ("lm-eval's `clamp` sets the projection of x - b_dec on the unit decoder direction; "
               "steerc's clamp/suppress set the SAE activation a_i(x), which needs the encoder")
    else:
        why = f"lm-eval's steered model only adds vectors and clamps projections; `{word}` is neither"
    return Diagnostic("E450", f"{word} cannot be exported to lm-eval: {why}", iv.span,
                      "evaluate the compiled checkpoint instead (lm-eval `--model hf` with "
                      "`trust_remote_code=True`), or export only steer/amplify rules")


def plan_rows(program: Program, config, adapter) -> list[SteerRow]:
    """One SteerRow per additive (intervention, hook point); raises DiagnosticError with one
    diagnostic per source rule that lm-eval's steered model cannot run exactly."""
    diags: dict[tuple, Diagnostic] = {}
    rows: list[SteerRow] = []
    base = adapter.base_model(config) + "."

    def refuse(iv: Intervention, d: Diagnostic) -> None:
        diags.setdefault((iv.span, d.code), d)  # one per rule, not per feature of a set

    if program.json is not None:
        diags[(program.json.span, "E456")] = Diagnostic(
            "E456", "`enforce json` cannot be exported to lm-eval: its guard is decode-time code "
            "(custom_generate/) and its latent half sets and scales SAE activations", program.json.span,
            "evaluate the compiled checkpoint with lm-eval `--model hf` and `trust_remote_code=True`")
    for iv in program.interventions:
        if program.json is not None and iv.span == program.json.span:
            continue  # the `enforce json` rule's own features: refused once above
        if iv.op is not Op.ADD:
            refuse(iv, _refuse_op(iv))
            continue
        if iv.condition is not None or iv.positions != "all":
            what = "a `when` condition" if iv.condition is not None else f"`on {iv.positions}`"
            refuse(iv, Diagnostic("E451", f"{what} cannot be exported to lm-eval: its hooks add the "
                                  "vector at every position of every forward call", iv.span,
                                  "export the unconditional rule, or evaluate the compiled checkpoint"))
            continue
        for point in iv.points:
            site = adapter.edit_site(point, config)
            if site.where != "out" or site.add_input_of or not site.path.startswith(base):
                refuse(iv, Diagnostic(
                    "E452", f"{point} is not the output of one module, the only place lm-eval's "
                    "steered model can add to", iv.span,
                    "name the same stream as a module's output: blocks.L.hook_resid_pre equals "
                    "blocks.{L-1}.hook_resid_post, which is the output of decoder layer L-1"))
                continue
            rows.append(SteerRow(site.path[len(base):], point, iv))
    if not rows and not diags:
        diags[(None, "E453")] = Diagnostic(
            "E453", "the spec has no rule to export: lm-eval would evaluate the unsteered model",
            None, "add a steer/amplify rule")
    if diags:
        raise DiagnosticError(list(diags.values()))
    return rows


def steering_vectors(rows: list[SteerRow], direction) -> dict:
    """{hookpoint: fp32 [d] sum of coefficient * d_i}: adds at one point commute, so one
    vector per hookpoint is exact (and what a `.pt` entry holds). `direction(feature)` gives
    steerc's decoder row d_i (the vector compile folds into weights)."""
    import torch

    out: dict = {}
    for r in rows:
        v = r.coefficient * direction(r.intervention.feature).to(torch.float32)
        out[r.hookpoint] = v if r.hookpoint not in out else out[r.hookpoint] + v
    return out


def pt_payload(rows: list[SteerRow], direction) -> dict:
    """The `.pt` content: one `add` entry per hookpoint, coefficient 1, no bias."""
    return {hp: {"action": "add", "steering_vector": v.contiguous(), "steering_coefficient": 1.0,
                 "bias": None, "head_index": None}
            for hp, v in sorted(steering_vectors(rows, direction).items())}


def csv_text(rows: list[SteerRow], program: Program) -> str:
    """The `.csv` content: one row, for the one additive feature of an SAE named by SAELens
    release and id (E454/E455 otherwise)."""
    diags = []
    by_point = defaultdict(list)
    for r in rows:
        by_point[r.hookpoint].append(r)
    if len(rows) > 1:
        extra = rows[1].intervention
        diags.append(Diagnostic(
            "E454", f"an lm-eval CSV holds one additive feature exactly ({len(rows)} here): rows at "
            "one hookpoint replace each other, and lm-eval v0.4.8-v0.4.9.1 adds the last row's "
            "vector at every hookpoint", extra.span,
            "write a .pt file instead (-o steer.pt): one summed vector per hook point"))
    for r in rows[:1]:
        sae = program.sae(r.intervention.feature.sae)
        if sae.source is None or sae.source.release is None:
            diags.append(Diagnostic(
                "E455", f"SAE `{sae.alias}` has no SAELens name, and an lm-eval CSV names SAEs only "
                "that way (it loads them with sae_lens.SAE.from_pretrained)", r.intervention.span,
                "write a .pt file instead (-o steer.pt): it holds the vectors themselves"))
    if diags:
        raise DiagnosticError(diags)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        src = program.sae(r.intervention.feature.sae).source
        w.writerow(["sae_lens", "add", src.release, r.hookpoint, r.intervention.feature.index,
                    repr(r.coefficient), src.sae_id, r.intervention.origin])
    return buf.getvalue()


__all__ = ["SteerRow", "plan_rows", "steering_vectors", "pt_payload", "csv_text", "FORMATS",
           "CSV_COLUMNS"]
