"""README.md for a compiled checkpoint: what changed and exactly how to load it."""

from __future__ import annotations

from collections import Counter

from steerc.compiler.rulegroups import group_by_rule

_KIND = {"weights": "exact weight edit", "hook": "hook module (exact, runs in forward)"}


def _base(program) -> str:
    src = program.model_source
    if src is None:
        return f"`{program.model}`"
    return f"`{src.repo}` (Hugging Face Hub, commit `{src.commit}`)"


def _rule_row(g) -> str:
    """One table row per source rule; a rule whose features lower in several ways lists
    each way with its feature count (`steerc-manifest.json` has every feature)."""
    kinds = Counter(lo.kind for lo in g.items)
    shown = "; ".join(_KIND.get(k, k) + (f" ({n})" if len(kinds) > 1 else "") for k, n in kinds.items())
    whys = "; ".join(dict.fromkeys(lo.reason for lo in g.items))
    rule = g.origin.replace("|", "\\|")
    return f"| `{rule}` | {len(g)} | {shown} | {whys} |"


def model_card(program, plan, manifest: dict) -> str:
    """The downstream user's model card (Markdown). Deterministic for equal inputs."""
    from steerc.targets import TARGETS

    hooks = plan.target == "hooks" and (bool(plan.hooks) or program.json is not None)
    # a target whose output is not a transformers checkpoint (an adapter) says how to load it
    target = TARGETS.get(plan.target)
    own = getattr(target, "card_sections", None)
    library = getattr(target, "library_name", "transformers")
    lines = ["---", f"library_name: {library}", "tags:", "- steerc", "- steering"]
    lines += ["---", "", "# Steered checkpoint (steerc)", ""]
    lines += [f"Compiled by steerc {manifest['compiler']['version']} from `{program.spec_file}` "
              f"against base model {_base(program)}, target **{plan.target}**.", ""]
    lines += ["## What changed", "", "| rule | features | lowered as | why |", "|---|---|---|---|"]
    lines += [_rule_row(g) for g in group_by_rule(plan.lowerings, key=lambda lo: lo.intervention)]
    if not plan.lowerings:
        lines.append("| (no rules) | 0 | unchanged | |")
    if own is not None:
        lines += [""] + own(program, plan, manifest)
    else:
        lines += _checkpoint_sections(program, plan, manifest, hooks)
    if program.json is not None:
        lines += _other_engines(program.json.schema is not None)
    lines += ["## Provenance", "",
              f"- base model tensors sha256: `{manifest['base_model']['tensors_sha256']}`",
              f"- output tensors sha256: `{manifest['tensors_sha256']}`"]
    for s in manifest["saes"]:
        lines.append(f"- SAE `{s['alias']}` ({s['hook']}): `{s['sha256']}`")
    return "\n".join(lines) + "\n"


def _checkpoint_sections(program, plan, manifest: dict, hooks: bool) -> list[str]:
    """What changed and how to load a transformers checkpoint (weights or hooks target)."""
    lines = ["", f"{len(manifest['edits'])} tensors were rewritten; every other tensor is "
             "byte-identical to the base. `steerc-manifest.json` lists each edit with content "
             "hashes before and after.", ""]
    lines += ["## How to load", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer", ""]
    if hooks:
        # the tokenizer too: AutoTokenizer reads the custom config and would otherwise ask y/N
        lines += ['model = AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)',
                  'tok = AutoTokenizer.from_pretrained("PATH", trust_remote_code=True)', "```", "",
                  "`trust_remote_code=True` is required: some rules run as small hook modules "
                  "(`modeling_steerc.py`, torch and transformers only, no steerc install needed). "
                  f"The config's `model_type` is `steerc_{plan.family}`, so loading without it "
                  "fails instead of silently giving the un-steered base model.", ""]
        if program.json is not None:
            lines += ["`model.generate` is replaced by `custom_generate/generate.py`, which only "
                      "lets JSON" + (" matching `custom_generate/schema.json`" if program.json.schema
                                     else "") + " be generated (needs `xgrammar`, see "
                      "`custom_generate/requirements.txt`).", ""]
    else:
        lines += ['model = AutoModelForCausalLM.from_pretrained("PATH")',
                  'tok = AutoTokenizer.from_pretrained("PATH")', "```", "",
                  "Every rule is an exact weight edit: this is a plain checkpoint of the base "
                  "architecture (no custom code), usable by any runtime that loads it.", ""]
    return lines


def _other_engines(has_schema: bool) -> list[str]:
    """vLLM / llama.cpp settings equal to the guard: those engines ignore custom_generate/."""
    schema = "custom_generate/schema.json"
    lines = ["## JSON guard in other engines", "",
             "vLLM, llama.cpp and TGI load only the weights: the steering edits apply, but the "
             "JSON guard does not run unless you pass the engine's own setting:", ""]
    if has_schema:
        lines += ["- **vLLM** (>= 0.12):", "", "  ```python", "  import json",
                  "  from vllm import SamplingParams",
                  "  from vllm.sampling_params import StructuredOutputsParams",
                  f'  schema = json.load(open("PATH/{schema}"))',
                  "  params = SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))",
                  "  ```", "",
                  '  OpenAI-compatible server: `"structured_outputs": {"json": schema}` in the request.',
                  f"- **llama.cpp** (`llama-cli` / `llama-server`): `--json-schema-file PATH/{schema}`, "
                  "or `-j '<schema text>'` (`--json-schema`).", ""]
    else:
        lines += ["- **vLLM** (>= 0.12): `SamplingParams(structured_outputs="
                  "StructuredOutputsParams(json_object=True))`; OpenAI-compatible server: "
                  '`"structured_outputs": {"json_object": true}`.',
                  "- **llama.cpp** (`llama-cli` / `llama-server`): `-j '{}'` (`--json-schema '{}'`, "
                  "any JSON).", ""]
    return lines
