"""Compile at scale, on small synthetic checkpoints (bench/synth_checkpoint.py shapes):
bounded memory (peak RSS of a subprocess against the largest tensor), an additive rule
hard-links every base shard and puts new tensors in one new shard, that layout loads with
plain transformers and matches the runtime reference, and --jobs does not change a byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers as tf

from bench.synth_checkpoint import SHAPES, Shape, tensors, write_checkpoint
from steerc.checkpoint.layout import INDEX
from steerc.checkpoint.output import ADDED_SHARD
from steerc.checkpoint.reader import open_checkpoint
from steerc.compiler.build_checkpoint import compile_program
from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding
from steerc.runtime.apply import apply
from steerc.saes import load_sae
from tests.tinymodels import random_sae_dir

ROOT = Path(__file__).resolve().parents[2]
D_SAE = 16
# Many mid-size tensors, so that a whole-model load (~170 MB) would break the memory bound
# (2x the largest tensor, 1 MiB, plus slack) by far.
MANY = Shape(hidden=256, layers=48, intermediate=2048, vocab=2048, heads=4, kv_heads=2)


def _program(base: Path, sae: Path, rule: str, d: int, layers: int) -> Program:
    hook = f"blocks.{layers // 2}.hook_resid_post"
    b = SaeBinding("r", str(sae), hook, d, D_SAE, "0" * 64)
    if rule == "add":
        iv = Intervention(Op.ADD, FeatureId("r", 3), 4.0, (hook,), origin="steer r[3] by 4")
    else:
        iv = Intervention(Op.PROJECT_OUT, FeatureId("r", 5), 0.0, (), everywhere=True,
                          origin="ablate r[5] everywhere")
    return Program("scale.steer", str(base), (b,), None, (iv,))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    s = SHAPES["tiny"]
    write_checkpoint(s, root / "base", shard_bytes=40_000)
    random_sae_dir(s.hidden, D_SAE, f"blocks.{s.layers // 2}.hook_resid_post", root / "sae", scale=8.0)
    return root, s


def test_additive_rule_links_every_base_shard(tiny):
    root, s = tiny
    base_dir = root / "base"
    base = open_checkpoint(base_dir)
    assert len(base.files) >= 3
    res = compile_program(_program(base_dir, root / "sae", "add", s.hidden, s.layers), root / "add",
                          saes={"r": load_sae(root / "sae")})
    out = root / "add"
    assert res.manifest["shards"] == {**{f: "link" for f in base.files}, ADDED_SHARD: "new"}
    for f in base.files:
        assert os.stat(out / f).st_ino == os.stat(base_dir / f).st_ino
    added = open_checkpoint(out)
    new = {n for n, t in added.tensors.items() if t.file == ADDED_SHARD}
    want = {f"model.layers.{i}.mlp.{p}.bias" for i in range(s.layers)
            for p in ("gate_proj", "up_proj", "down_proj")}
    assert new == want and not new & set(base.tensors)
    wm = json.loads((out / INDEX).read_text())["weight_map"]
    assert set(wm) == set(base.tensors) | want
    assert set(res.manifest["files"]) == set(base.files) | {ADDED_SHARD}


def test_added_shard_layout_loads_plain_and_matches_runtime(tiny):
    root, s = tiny
    prog = _program(root / "base", root / "sae", "add", s.hidden, s.layers)
    sae = load_sae(root / "sae")
    out = root / "add2"
    compile_program(prog, out, saes={"r": sae})
    got = tf.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ref = tf.AutoModelForCausalLM.from_pretrained(root / "base", dtype=torch.float32).eval()
    ids = torch.randint(3, s.vocab, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = ref(ids).logits
        with apply(ref, prog, {"r": sae}):
            want = ref(ids).logits
        have = got(ids).logits
    effect = (want - plain).abs().max().item()
    err = (have - want).abs().max().item()
    # the stored bias is bf16-rounded (relative 2^-8) while the runtime adds the fp32 delta
    assert effect > 1e-2 and err <= 2 ** -7 * effect, (err, effect)


def _peak_rss_child(base: Path, sae: Path, out: Path, d: int, layers: int) -> tuple[float, float]:
    code = f"""
import sys, json
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from tests.scale.test_scale import _program
from steerc.compiler.build_checkpoint import compile_program
from steerc.saes import load_sae
import steerc.runtime.build_hooks, transformers
sae = load_sae({str(sae)!r})
def vm(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
prog = _program(Path({str(base)!r}), Path({str(sae)!r}), 'ablate', {d}, {layers})
compile_program(prog, {str(out)!r} + '-warm', saes={{'r': sae}})  # lazy imports, allocator
open('/proc/self/clear_refs', 'w').write('5')  # reset VmHWM to the current RSS
before = vm('VmRSS:')
compile_program(prog, {str(out)!r}, saes={{'r': sae}})
print(json.dumps([before, vm('VmHWM:')]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "STEERC_HASH_CACHE": "0"})
    return tuple(json.loads(p.stdout.strip().splitlines()[-1]))


def test_ablate_everywhere_runs_in_bounded_memory(tmp_path):
    write_checkpoint(MANY, tmp_path / "base", shard_bytes=48 << 20)
    random_sae_dir(MANY.hidden, D_SAE, f"blocks.{MANY.layers // 2}.hook_resid_post", tmp_path / "sae")
    sizes = {n: 2 * torch.Size(sh).numel() for n, sh in tensors(MANY)}
    total, largest = sum(sizes.values()), max(sizes.values())
    before, peak = _peak_rss_child(tmp_path / "base", tmp_path / "sae", tmp_path / "out",
                                   MANY.hidden, MANY.layers)
    grew = peak - before
    bound = (2 * largest) / 2**20 + 24  # MiB; 24: 16 MiB read chunk, allocator slack
    assert total / 2**20 > 2 * bound  # a whole-model load would fail this test
    assert grew <= bound, (grew, bound, total / 2**20)
    m = json.loads((tmp_path / "out" / "steerc-manifest.json").read_text())
    assert set(m["shards"].values()) >= {"rewritten"}


def test_jobs_do_not_change_a_byte(tiny):
    root, s = tiny
    prog = _program(root / "base", root / "sae", "ablate", s.hidden, s.layers)
    sae = load_sae(root / "sae")
    outs = []
    for jobs in (1, 3):
        out = root / f"abl-{jobs}"
        compile_program(prog, out, saes={"r": sae}, jobs=jobs)
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]
