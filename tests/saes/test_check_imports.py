"""`steerc check` (and fmt, catalogue) never import torch: check is the fast CI/pre-commit
command, and `import torch` alone costs seconds. Each run happens in a fresh interpreter
(this pytest process has torch loaded already) and reports which heavy modules the
commands pulled into `sys.modules`.

Covered: every example spec, and a spec over each SAE format the loaders read (SAELens,
legacy bf16 SAELens, sparsify, Llama Scope, Gemma Scope npz stored and compressed). The
pickled formats (OpenAI, Goodfire) are refused (E307) without --allow-pickle, also torch-free;
with it, torch.load needs torch and may import it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from test_formats import write_llama_scope, write_npz, gemma_params, write_openai, write_sparsify

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
EXAMPLES = sorted((ROOT / "specs" / "examples").glob("*.steer"))
HEAVY = ("torch", "numpy", "transformers", "safetensors.torch", "xgrammar")

_RUNNER = """
import json, sys
from steerc.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    rc = main(argv)
    out.append({"argv": argv, "rc": rc, "heavy": sorted(m for m in %r if m in sys.modules)})
print("\\nRESULT " + json.dumps(out))
""" % (HEAVY,)


def run_fresh(argvs: list[list[str]]) -> list[dict]:
    """Run `steerc ARGV` for each ARGV in one new interpreter; per run: rc and the heavy
    modules loaded so far (the first run that loads one is the one to blame)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argvs)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "RESULT " in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    return json.loads(p.stdout.rsplit("RESULT ", 1)[1])


def assert_light(results: list[dict], want_rc: dict[int, int] | None = None) -> None:
    for i, r in enumerate(results):
        assert r["rc"] == (want_rc or {}).get(i, 0), r
        assert not r["heavy"], f"`steerc {' '.join(r['argv'])}` imported {r['heavy']}"


def test_check_fmt_catalogue_on_examples_do_not_import_torch(tmp_path):
    argvs = []
    # json_schema.steer too: xgrammar's verdict (which imports torch) is left to compile
    for i, spec in enumerate(EXAMPLES):
        lock = str(tmp_path / f"{i}.lock")
        committed = spec.with_name(spec.name + ".lock")
        if "by auto" in spec.read_text():  # its calibrated strength lives in its lock
            shutil.copy(committed, lock)
        argvs += [["check", str(spec), "--write-lock", "--lock", lock],
                  ["check", str(spec), "--locked", "--lock", lock, "-v"],
                  ["fmt", "--check", str(spec)]]
    cat = str(FIX / "catalogue.json")
    argvs += [["catalogue", "check", cat], ["catalogue", "search", "loop", "-c", cat]]
    assert len(argvs) > 5
    assert_light(run_fresh(argvs))


def _saelens_bf16_legacy(d: Path) -> Path:
    """A v0-v2 style SAELens folder: `"dtype": "torch.bfloat16"`, bf16 tensors."""
    d.mkdir(parents=True)
    cfg = json.loads((FIX / "sae_res" / "cfg.json").read_text())
    cfg["dtype"] = "torch.bfloat16"
    (d / "cfg.json").write_text(json.dumps(cfg))
    n, m = cfg["d_in"], cfg["d_sae"]
    t = {"W_enc": torch.randn(n, m), "W_dec": torch.randn(m, n), "b_enc": torch.zeros(m),
         "b_dec": torch.zeros(n), "threshold": torch.ones(m)}
    save_file({k: v.bfloat16() for k, v in t.items()}, str(d / "sae_weights.safetensors"))
    return d


def _formats(tmp: Path) -> dict[str, Path]:
    """One SAE per format at a hook of the 3-layer fixture model (layer 1)."""
    saes = {"saelens": shutil.copytree(FIX / "sae_res", tmp / "saelens"),
            "saelens_bf16": _saelens_bf16_legacy(tmp / "saelens_bf16")}
    write_sparsify(tmp / "sp" / "layers.1")
    saes["sparsify"] = tmp / "sp" / "layers.1"
    write_llama_scope(tmp / "ls", hook_point_in="blocks.1.hook_resid_post",
                      hook_point_out="blocks.1.hook_resid_post")
    saes["llama_scope"] = tmp / "ls"
    for kind, compressed in (("npz", False), ("npz_compressed", True)):
        saes[kind] = write_npz(tmp / kind / "gemma-scope-2b-pt-res/layer_1/width_16k/average_l0_9/params.npz",
                               gemma_params(), compressed)
    return saes


def _spec(path: Path, sae: Path, model: Path = FIX / "model") -> str:
    path.write_text(f'model "{model}"\nsae res = "{sae}"\n\nsteer res[1] by 4\n'
                    "ablate res[2] everywhere\n", encoding="utf-8")
    return str(path)


def _model_for(sae: Path, d: Path) -> Path:
    """A 3-layer Llama whose hidden size is the SAE's d_in (check validates the pair):
    config.json and a header-only safetensors file are all check reads."""
    from steerc.saes import load_sae

    hidden = load_sae(sae).cfg.d_in
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(
        {"model_type": "llama", "hidden_size": hidden, "num_hidden_layers": 3}))
    names = [f"model.layers.{L}.mlp.down_proj.weight" for L in range(3)]
    header = json.dumps({n: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
                         for i, n in enumerate(names)}).encode()
    (d / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(12))
    return d


def test_check_reads_every_sae_format_without_torch(tmp_path):
    saes = _formats(tmp_path / "saes")
    argvs = [["check", _spec(tmp_path / f"{name}.steer", sae, _model_for(sae, tmp_path / f"model_{name}")),
              "--write-lock", "--lock",
              str(tmp_path / f"{name}.lock")] for name, sae in saes.items()]
    assert_light(run_fresh(argvs))
    for name in saes:  # the lock records each SAE's content hash, computed torch-free
        assert "sha256" in (tmp_path / f"{name}.lock").read_text(), name


def test_pickled_saes_are_refused_without_torch(tmp_path):
    """Without --allow-pickle the refusal (E307) comes from the sniffed bytes, not torch."""
    write_openai(tmp_path / "resid_post_mlp_v5_32k" / "autoencoders" / "1.pt")
    gf = tmp_path / "gf"
    gf.mkdir()
    torch.save({"encoder_linear.weight": torch.randn(64, 16), "encoder_linear.bias": torch.zeros(64),
                "decoder_linear.weight": torch.randn(16, 64), "decoder_linear.bias": torch.zeros(16)},
               gf / "tiny-SAE-l1.pth")
    specs = [_spec(tmp_path / "oa.steer", tmp_path / "resid_post_mlp_v5_32k/autoencoders/1.pt"),
             _spec(tmp_path / "gf.steer", gf)]
    assert_light(run_fresh([["check", s] for s in specs]), want_rc={0: 1, 1: 1})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64,
                                   torch.int64, torch.int32, torch.uint8, torch.bool])
def test_header_dtypes_and_bytes_match_the_torch_path(tmp_path, dtype):
    """The torch-free dtype names and raw bytes (what the SAE content hash reads) equal
    what the tensors give, so steer.lock hashes did not change when torch left `check`."""
    import numpy as np

    from steerc.saes.store import NpzStore, SafetensorsStore, TensorStore

    t = {"m": (torch.randn(5, 7) * 3).to(dtype), "v": (torch.randn(7) * 3).to(dtype),
         "s": torch.tensor(2.5).to(dtype)}
    save_file(t, str(tmp_path / "t.safetensors"))
    stores = [SafetensorsStore(tmp_path / "t.safetensors")]
    if dtype != torch.bfloat16:  # numpy has no bfloat16
        arrs = {k: v.numpy() for k, v in t.items()}
        np.savez(tmp_path / "u.npz", **arrs, f=np.asfortranarray(arrs["m"]))
        np.savez_compressed(tmp_path / "c.npz", **arrs)
        stores += [NpzStore(tmp_path / "u.npz"), NpzStore(tmp_path / "c.npz")]
    for st in stores:
        for key in st.keys():
            want = st.get(key)
            assert st.shape(key) == tuple(want.shape), (st.path, key)
            assert "torch." + st.dtype_name(key) == str(want.dtype), (st.path, key)
            assert b"".join(st.raw_chunks(key)) == b"".join(TensorStore.raw_chunks(st, key)), (st.path, key)


def test_validation_pass_refusals_do_not_import_torch():
    """The validation pass reads config.json and safetensors headers as plain JSON/bytes:
    its refusals (E24x, E309, E49x, E602, TopK k) are as torch-free as a passing check."""
    golden = ROOT / "tests" / "golden" / "semantic"
    cases = [p for p in sorted(golden.glob("e*.steer"))
             if p.name[:4] in ("e240", "e241", "e303", "e309", "e490", "e491", "e493", "e496",
                               "e497", "e602", "e607")]
    assert len(cases) >= 10
    assert_light(run_fresh([["check", str(p)] for p in cases]), want_rc={i: 1 for i in range(len(cases))})
