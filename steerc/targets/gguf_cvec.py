"""`--target gguf-cvec`: the spec's additive rules as a llama.cpp control vector.

    steerc compile spec.steer -o build/x --target gguf-cvec
    llama-cli -m base.gguf --control-vector build/x/control_vector.gguf

The output is a directory holding `control_vector.gguf` (tensors `direction.N`, f32,
[n_embd]; `general.architecture = controlvector`, `controlvector.model_hint` = the base's
llama.cpp architecture name, `controlvector.layer_count` = the number of direction tensors),
the manifest, the lock and a model card; no transformers checkpoint (no config.json).

Only unconditional adds at residual points over all positions are expressible: llama.cpp
adds one fixed vector per layer to every token. Where it adds it, read from llama.cpp's
source (ggml-org/llama.cpp master; older releases call the first two
`llama_control_vector_load` and `llama_control_vector`):

- common/common.cpp, `common_control_vector_load_one`: tensor `direction.N` (N >= 1;
  `direction.0` is an error, "invalid (zero) direction tensor layer index") is summed into
  the flat buffer at `n_embd * (N - 1)` ("layer 1 at [0]"); several tensors or files for one
  layer add up.
- src/llama-adapter.cpp, `llama_adapter_cvec::apply`: `tensors[il]` for il = 1..n_layer-1 is
  filled from `n_embd * (il - 1)`, so direction.N lands in `tensors[N]` ("there's never a
  tensor for layer 0"); `tensor_for(il)` returns it for layer_start <= il <= layer_end
  (common_init_from_params defaults them to 1 and n_layer).
- src/llama-graph.cpp, `llm_graph_context::build_cvec` = `cvec->apply_to(ctx0, cur, il)`,
  which every family's graph calls on the layer's output after the last residual add,
  just before naming it `l_out` (src/models/llama.cpp, gpt2.cpp, gptneox.cpp (both residual
  layouts), gemma2_iswa.cpp and gemma3_iswa.cpp (after the post-norms), phi3.cpp, olmo2.cpp:
  `cur = build_cvec(cur, il); cb(cur, "l_out", il);`).

So direction.N is added to the output of layer N (0-based), which is steerc's
`blocks.N.hook_resid_post` = `blocks.N+1.hook_resid_pre`: an add at resid_post L writes
direction.L, at resid_pre L writes direction.L-1. Nothing is ever added before layer 1's
output: `hook_embed`, resid_pre 0 and 1 and resid_post 0 cannot be expressed.
"""

from __future__ import annotations

import re
from pathlib import Path

from steerc.compiler.ir import Op
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.targets.base import Artifacts, Job, Refusal
from steerc.targets.engines import LLAMACPP, TGI, TRANSFORMERS, VLLM, EngineSupport

GGUF_FILE = "control_vector.gguf"
ARCH = "controlvector"  # general.architecture of every llama.cpp control vector

# transformers model_type -> the llama.cpp architecture its GGUF conversion gets
# (convert_hf_to_gguf.py registers MistralForCausalLM under LlamaModel). Written as
# `controlvector.model_hint`: llama.cpp's loader does not check it; it tells a user which
# base the vector belongs to. tests/targets/test_gguf_cvec.py checks that every family in
# steerc.arch.registry has an entry and that each is an architecture `gguf` knows.
LLAMA_CPP_ARCH = {
    "gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "qwen2",
    "gemma2": "gemma2", "qwen3": "qwen3", "gemma3_text": "gemma3", "phi3": "phi3",
    "olmo2": "olmo2", "gpt_neox": "gptneox", "qwen2_moe": "qwen2moe",
}

E_OP = "E416"       # a rule that is not a fixed vector added at every token
E_POINT = "E417"    # an add at a point llama.cpp never adds to
E_SPEC = "E418"     # the spec as a whole (enforce json, no additive rule), or no gguf package

_RESID = re.compile(r"^blocks\.([0-9]+)\.hook_resid_(pre|post)$")
_HOOKS_HINT = "use --target hooks (or auto) to compile it as a hook module"


def direction_index(point: str) -> int | None:
    """N of the `direction.N` an add at hook point `point` is: resid_post L -> L, resid_pre
    L -> L-1 (llama.cpp adds direction.N to layer N's output); None where llama.cpp never
    adds (embeddings, layer 0's output, points inside a layer)."""
    m = _RESID.match(point)
    if not m:
        return None
    n = int(m.group(1)) - (1 if m.group(2) == "pre" else 0)
    return n if n >= 1 else None


def _require_gguf():
    try:
        import gguf
    except ImportError:
        raise DiagnosticError([Diagnostic(
            E_SPEC, "--target gguf-cvec writes GGUF files with the `gguf` package, which is not "
            "installed", None, "pip install 'steerc[gguf]' (pure Python, from llama.cpp)")]) from None
    return gguf


class GgufCvecTarget:
    name = "gguf-cvec"
    summary = ("additive rules as a llama.cpp control vector (control_vector.gguf, "
               "`llama-cli --control-vector`)")
    expresses = "a llama.cpp control vector"
    runs_hooks = False
    engines = (
        EngineSupport(LLAMACPP, True, "`llama-cli -m BASE.gguf --control-vector control_vector.gguf` "
                      "(the base converted with `convert_hf_to_gguf.py`)",
                      "llama.cpp's loader and apply code read (common_control_vector_load_one, "
                      "llama_adapter_cvec::apply) and simulated in steerc's tests; not run by steerc"),
        EngineSupport(TRANSFORMERS, False, "not a transformers checkpoint: compile --target weights "
                      "for the same adds as a plain checkpoint", "the output has no config.json"),
        EngineSupport(VLLM, False, "vLLM has no control-vector loader", "vLLM's engine arguments"),
        EngineSupport(TGI, False, "TGI has no control-vector loader", "TGI's launcher arguments"),
    )
    # Optional members read by the CLI and the model card (a transformers checkpoint has none):
    usage = f"run it with llama-cli -m BASE.gguf --control-vector OUT/{GGUF_FILE}"

    def model_card(self, program, plan, manifest: dict) -> str:
        """The output's README.md (`model_card` below)."""
        return model_card(program, plan, manifest)

    def explain_lowering(self, lowering) -> tuple[str, str, str]:
        """(what, where, why) `steerc explain` prints for an accepted lowering."""
        iv = lowering.intervention
        names = ", ".join(f"direction.{direction_index(p)}" for p in iv.points)
        return ("control vector", names, "llama.cpp adds direction.N to layer N's output at every "
                "token (value x decoder row, summed with the other rules at that layer)")

    def refusal(self, lowering) -> Refusal | None:
        iv = lowering.intervention
        if iv.op == Op.PROJECT_OUT:
            hint = ("use --target weights (orthogonalized writers, where the family allows) or "
                    "hooks" if iv.everywhere else _HOOKS_HINT)
            return Refusal(E_OP, "a projection removes a component that depends on the "
                           "activation; a control vector only adds a fixed vector", hint)
        if iv.op != Op.ADD:
            return Refusal(E_OP, f"{iv.op.value} needs the feature's activation a_i(x); a "
                           "control vector only adds a fixed vector", _HOOKS_HINT)
        if iv.condition is not None:
            return Refusal(E_OP, "a condition is evaluated per token; a control vector adds "
                           "the same vector to every token", _HOOKS_HINT)
        if iv.positions != "all":
            return Refusal(E_OP, f"position scope '{iv.positions}': a control vector adds to "
                           "every token, prompt and generated alike", _HOOKS_HINT)
        for p in iv.points:
            if direction_index(p) is None:
                return Refusal(E_POINT, f"llama.cpp adds direction.N to the output of layer N "
                               f">= 1 only, never at {p}", _point_hint(p))
        return None

    def program_refusals(self, program) -> list[Diagnostic]:
        out = []
        if program.json is not None:
            out.append(Diagnostic(E_SPEC, "`enforce json` needs a decode-time guard, which a "
                                  "control vector cannot carry", program.json.span,
                                  "use --target hooks (or auto); in llama.cpp pass "
                                  "`--json-schema` yourself"))
        if not program.interventions:
            out.append(Diagnostic(E_SPEC, "the spec has no rule to write as a control vector "
                                  "(llama.cpp refuses a control vector without directions)",
                                  program.model_span, "add a `steer` rule, or use --target weights"))
        return out

    def emit(self, job: Job, out: Path) -> Artifacts:
        return write_control_vector(job, out)


def _point_hint(point: str) -> str:
    if point == "hook_embed" or _RESID.match(point):
        return ("move the rule to an SAE at a later layer, or use --target weights (exact where "
                "the family has a bias slot or an unscaled embedding there) or hooks")
    return _HOOKS_HINT


def control_vectors(job: Job) -> dict[int, tuple]:
    """N -> (fp32 vector [d], contributing lowerings): sum of value * decoder row over every
    rule whose point maps to direction.N (`direction_index`), summed in fp64 in plan order."""
    import torch

    sums: dict[int, tuple] = {}
    for lo in job.plan.lowerings:
        iv = lo.intervention
        row = job.directions(iv.feature).to(torch.float64)  # (d,)
        for p in iv.points:
            n = direction_index(p)
            acc, los = sums.get(n, (torch.zeros_like(row), []))
            sums[n] = (acc + iv.value * row, los + [(lo, p)])
    return {n: (acc.to(torch.float32), los) for n, (acc, los) in sorted(sums.items())}


def write_control_vector(job: Job, out: Path) -> Artifacts:
    """Write `control_vector.gguf` into `out`; the manifest records its sha256 (`files`) and
    each direction's `tensor_hash` (`tensors`), one audit record per direction."""
    import torch

    from steerc.checkpoint.digest import tensor_hash
    from steerc.checkpoint.output import TensorOutput
    from steerc.files.hashing import sha256_uncached
    from steerc.files.write import atomic_file

    gguf = _require_gguf()
    vectors = control_vectors(job)
    model_type = job.base.raw_config.get("model_type")
    hint = LLAMA_CPP_ARCH[model_type]  # every registered family has one (tested)
    res, records = TensorOutput(), []
    for n, (v, los) in vectors.items():
        name = f"direction.{n}"
        if not bool(torch.isfinite(v).all()):
            iv = los[0][0].intervention
            raise DiagnosticError([Diagnostic(
                "E433", f"tensor '{name}' would hold a NaN or an infinity (the sum of "
                f"{len(los)} rule(s) at layer {n}, written for `{iv.origin}`); nothing was written",
                iv.span, "check the rules' values")])
        res.hashes[name] = tensor_hash(name, "F32", (v.numel(),), v.numpy().tobytes())
        records.append({"tensor": name, "ops": [
            {"op": "add", "rule": lo.intervention.origin, "feature": str(lo.intervention.feature),
             "value": lo.intervention.value, "point": p} for lo, p in los]})
    with atomic_file(out / GGUF_FILE) as tmp:
        w = gguf.GGUFWriter(tmp, ARCH)  # writes general.architecture
        w.add_string(f"{ARCH}.model_hint", hint)
        w.add_int32(f"{ARCH}.layer_count", len(vectors))
        for n, (v, _) in vectors.items():
            w.add_tensor(f"direction.{n}", v.numpy())
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    res.files[GGUF_FILE] = sha256_uncached(out / GGUF_FILE)
    res.shards[GGUF_FILE] = "new"
    return Artifacts(None, res, records)


def model_card(program, plan, manifest: dict) -> str:
    """README.md of a gguf-cvec output: which rules became which direction, how to run it in
    llama.cpp, and that transformers, vLLM and `steerc verify` do not load it."""
    from steerc.compiler.modelcard import _base

    rows = []
    for rec in manifest["edits"]:
        for op in rec["ops"]:
            rule = str(op.get("rule", "")).replace("|", "\\|")
            rows.append(f"| `{rule}` | {op.get('feature')} | {op.get('value')} | {op.get('point')} "
                        f"| `{rec['tensor']}` |")
    lines = ["---", "library_name: gguf", "tags:", "- steerc", "- steering", "- control-vector",
             "---", "", "# Steering control vector (steerc)", "",
             f"Compiled by steerc {manifest['compiler']['version']} from `{program.spec_file}` "
             f"for base model {_base(program)} (llama.cpp architecture "
             f"`{LLAMA_CPP_ARCH.get(plan.family, plan.family)}`), target **{plan.target}**.", "",
             "## What it adds", "",
             "llama.cpp adds `direction.N` to the output of layer N (0-based, N >= 1) at every "
             "token; steerc's `blocks.N.hook_resid_post` (= `blocks.N+1.hook_resid_pre`). Each "
             "direction is the sum of value x decoder row of its rules:", "",
             "| rule | feature | value | hook point | tensor |", "|---|---|---|---|---|", *rows, "",
             "## How to run", "", "```",
             f"llama-cli -m BASE.gguf --control-vector {GGUF_FILE}", "```", "",
             "`BASE.gguf` is the base model converted with llama.cpp's `convert_hf_to_gguf.py`. "
             "`--control-vector-scaled FILE S` scales every direction by S; "
             "`--control-vector-layer-range A B` limits the layers. This is not a transformers "
             "checkpoint: transformers, vLLM and `steerc verify` do not load it (compile with "
             "`--target weights` or `hooks` for those).", "",
             "## Provenance", "",
             f"- `{GGUF_FILE}` sha256: `{manifest['files'].get(GGUF_FILE)}`",
             f"- base model tensors sha256: `{manifest['base_model']['tensors_sha256']}`"]
    for s in manifest["saes"]:
        lines.append(f"- SAE `{s['alias']}` ({s['hook']}): `{s['sha256']}`")
    return "\n".join(lines) + "\n"
