"""Compile at real model sizes: steerc vs load-edit-save_pretrained vs `cp`, side by side.

    .venv/bin/python bench/scale_bench.py --shapes llama-3.2-1b,llama-3.2-3b [--repeats 1]
        [--root /tmp/scale] [--methods steerc,steerc-copy,naive] [--jobs N] [--cold] [--keep]

Per shape (bench/synth_checkpoint.py, bf16, 2 GB shards, tied embeddings) and rule
(`add`: one steer at resid_post of the middle layer; `ablate`: `ablate ... everywhere`),
each method runs in a fresh subprocess; wall and CPU seconds are the child's own (after
imports; the base's lock fingerprint, which `steerc compile` computes before compiling, and
the per-tensor hash table of its shards (`digest.base_tensor_hashes`, cached by stat like the
lock's) are timed apart: cold once per base, then ~0), peak RSS is the child's own VmHWM.
The disk-speed references (each `cp` then `sync`): `cp` of one file holding exactly the
edited tensors' bytes, and `cp` of every output file that is not a hard link of the base
(the new bytes the output must hold: edited tensors plus the untouched tensors that share a
shard with one); both copy bytes (`--reflink=never`: coreutils' `cp` would otherwise clone
on btrfs/XFS). `steerc-copy` is steerc with reflinks refused (`writer.clone_file`), as on
ext4: on a file system that can reflink, it shows what cloning the rewritten shards saves.
"disk GB" is how much the file system's used space grew (`statvfs`, after a `sync`,
outside the timed region): shared blocks of a clone or hard link count nothing. The
methods' outputs are checked tensor by tensor for the edited tensors
(equal bytes) at the end of each rule.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_FEATURES = 256


def _program(base: Path, sae: Path, rule: str):
    from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding

    cfg = json.loads((base / "config.json").read_text())
    L, d = cfg["num_hidden_layers"] // 2, cfg["hidden_size"]
    b = SaeBinding("r", str(sae), f"blocks.{L}.hook_resid_post", d, N_FEATURES, "0" * 64)
    if rule == "add":
        iv = Intervention(Op.ADD, FeatureId("r", 3), 4.0, (f"blocks.{L}.hook_resid_post",))
    else:
        iv = Intervention(Op.PROJECT_OUT, FeatureId("r", 3), 0.0, (), everywhere=True)
    return Program("bench.steer", str(base), (b,), None, (iv,))


def _naive(base: Path, sae, rule: str, out: Path) -> None:
    import torch
    import transformers as tf

    from steerc.compiler import edits

    d_i = sae.decoder_rows([3])[0].float()
    kw = {"mlp_bias": True} if rule == "add" else {}
    model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16, **kw)
    with torch.no_grad():
        if rule == "add":
            L = model.config.num_hidden_layers // 2
            for n, p in model.named_parameters():
                if n.endswith(("gate_proj.bias", "up_proj.bias", "down_proj.bias")):
                    p.zero_()
            b = model.model.layers[L].mlp.down_proj.bias
            b.copy_(edits.add_to_bias(b, 4.0 * d_i))
        else:
            Q = edits.orthonormal_basis([d_i])
            e = model.model.embed_tokens.weight
            model.lm_head.weight = torch.nn.Parameter(e.detach().clone())  # untie
            model.config.tie_word_embeddings = False
            for layer in model.model.layers:
                for lin in (layer.self_attn.o_proj, layer.mlp.down_proj):
                    lin.weight.copy_(edits.project_writer(lin.weight, Q, "linear"))
            e.copy_(edits.project_embedding(e, Q))
    model.save_pretrained(out, max_shard_size="2GB")


def settle(cold: bool) -> None:
    """Flush dirty pages; with `cold`, also empty the page cache (root only), so that the
    next timed step reads from and writes to the disk, as a CI runner's first compile does."""
    os.sync()
    if cold:
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        except OSError as e:
            raise SystemExit(f"--cold needs root to drop the page cache: {e}") from None


def worker(method: str, rule: str, base: Path, sae_dir: Path, out: Path, jobs: int,
           cold: bool = False) -> dict:
    import torch  # noqa: F401  imports stay outside the timed region for both methods
    import transformers as tf  # noqa: F401
    from transformers import LlamaForCausalLM  # noqa: F401

    import steerc.compiler.build_checkpoint  # noqa: F401
    import steerc.runtime.build_hooks  # noqa: F401
    from steerc.saes import load_sae

    sae = load_sae(sae_dir)
    # `steerc compile` fingerprints the base for the lock before compiling (hashing.py's
    # stat cache): done here too, timed on its own (cold once per base, then ~0)
    from steerc.checkpoint.digest import base_tensor_hashes
    from steerc.checkpoint.reader import open_checkpoint
    from steerc.files.hashing import model_fingerprint

    tf0 = time.perf_counter()
    model_fingerprint(base)
    fp = time.perf_counter() - tf0
    tf0 = time.perf_counter()
    ck = open_checkpoint(base)
    for f in ck.files:
        base_tensor_hashes(ck, f)
    table = time.perf_counter() - tf0
    settle(cold)
    t0, c0 = time.perf_counter(), time.process_time()
    if method.startswith("steerc"):
        from steerc.checkpoint import writer as shardwrite
        from steerc.compiler.build_checkpoint import compile_program

        if method == "steerc-copy":
            shardwrite.clone_file = lambda src, dst: False

        kw = {"jobs": jobs} if jobs else {}  # 0: steerc's default
        compile_program(_program(base, sae_dir, rule), out, force=True, saes={"r": sae}, **kw)
    else:
        _naive(base, sae, rule, out)
    t1, c1 = time.perf_counter(), time.process_time()
    os.sync()
    return {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "synced_seconds": time.perf_counter() - t0,
            "fingerprint_s": fp, "table_s": table, "peak_rss_mb": vm_hwm_mib()}


def vm_hwm_mib() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which keeps the
    forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status")


def run_child(args: list[str], fs: Path) -> dict:
    """Run this script as a child; its JSON line (times and its own peak RSS), plus
    `disk_bytes`: how much the used space of the file system holding `fs` grew."""
    os.sync()
    used = _used(fs)
    p = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    if p.wait():
        raise SystemExit(f"child failed ({p.returncode}): {args}")
    os.sync()
    return {**json.loads(out.strip().splitlines()[-1]), "disk_bytes": _used(fs) - used}


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def time_cp(srcs: list[Path], dst: Path, repeats: int, cold: bool = False) -> tuple[float, float]:
    """`cp` (one process) of `srcs` into the empty dir `dst`, then `sync`: the best of
    `repeats` runs of (seconds until cp returns, seconds including the sync), timed like
    the compiles (after `settle`)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        dst.mkdir(parents=True, exist_ok=True)
        settle(cold)
        t0 = time.perf_counter()
        subprocess.run(["cp", "--reflink=never", *map(str, srcs), str(dst)], check=True)
        t1 = time.perf_counter()
        os.sync()
        t2 = time.perf_counter()
        shutil.rmtree(dst)
        best = (min(best[0], t1 - t0), min(best[1], t2 - t0))
    return best


def new_files(out: Path) -> list[Path]:
    """The output's weight files that are not hard links of the base."""
    return [p for p in sorted(out.iterdir()) if p.is_file() and p.stat().st_nlink == 1
            and p.suffix == ".safetensors"]


def edited_bytes_file(out: Path, base: Path, dst: Path) -> int:
    """Write the bytes of every tensor steerc wrote (per its manifest) into one file."""
    from steerc.checkpoint.reader import open_checkpoint

    m = json.loads((out / "steerc-manifest.json").read_text())
    ck = open_checkpoint(out)
    n = 0
    with open(dst, "wb") as f:
        for name in sorted(e["tensor"] for e in m["edits"]):
            for data in ck.iter_raw(name):
                f.write(data)
                n += len(data)
    return n


def same_edits(a: Path, b: Path) -> bool:
    from steerc.checkpoint.reader import open_checkpoint

    m = json.loads((a / "steerc-manifest.json").read_text())
    ca, cb = open_checkpoint(a), open_checkpoint(b)
    names = [e["tensor"] for e in m["edits"]]
    return all(cb.has(n) and all(x == y for x, y in zip(ca.iter_raw(n), cb.iter_raw(n)))
               and ca.info(n).offsets[1] - ca.info(n).offsets[0]
               == cb.info(n).offsets[1] - cb.info(n).offsets[0] for n in names)


def ensure(shape: str, root: Path) -> tuple[Path, Path]:
    base, sae = root / shape, root / f"{shape}-sae"
    if not (base / "model.safetensors.index.json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench/synth_checkpoint.py"), shape, str(base)], check=True)
    if not sae.exists():
        cfg = json.loads((base / "config.json").read_text())
        code = ("import sys; sys.path.insert(0, %r); from tests.tinymodels import random_sae_dir; "
                "random_sae_dir(%d, %d, 'blocks.%d.hook_resid_post', %r)"
                % (str(ROOT), cfg["hidden_size"], N_FEATURES, cfg["num_hidden_layers"] // 2, str(sae)))
        subprocess.run([sys.executable, "-c", code], check=True)
    return base, sae


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="llama-3.2-1b,llama-3.2-3b")
    ap.add_argument("--rules", default="add,ablate")
    ap.add_argument("--methods", default="steerc,naive")
    ap.add_argument("--root", default="/tmp/scale")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=0, help="steerc's --jobs (0: its default)")
    ap.add_argument("--keep", action="store_true", help="keep the outputs")
    ap.add_argument("--worker", nargs=5, metavar=("METHOD", "RULE", "BASE", "SAE", "OUT"))
    ap.add_argument("--cold", action="store_true",
                    help="empty the page cache before every timed step (root only)")
    a = ap.parse_args()
    if a.worker:
        m, r, base, sae, out = a.worker
        print(json.dumps(worker(m, r, Path(base), Path(sae), Path(out), a.jobs, a.cold)))
        return
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    print(f"load: {os.getloadavg()}; page cache: {'emptied before each step' if a.cold else 'warm'}")
    print(f"{'shape':14} {'rule':7} {'method':11} {'wall s':>7} {'+sync s':>7} {'CPU s':>7} "
          f"{'RSS MiB':>8} {'new GB':>7} {'disk GB':>7}  notes")

    def row(shape, rule, method, wall, synced, cpu="", rss="", new="", disk="", notes=""):
        def f(x, w, p=2):
            return f"{x:{w}.{p}f}" if isinstance(x, float) else f"{x:>{w}}"
        print(f"{shape:14} {rule:7} {method:11} {f(wall, 7)} {f(synced, 7)} {f(cpu, 7)} "
              f"{f(rss, 8, 0)} {f(new, 7)} {f(disk, 7)}  {notes}", flush=True)

    for shape in a.shapes.split(","):
        base, sae = ensure(shape, root)
        size = sum(p.stat().st_size for p in base.glob("*.safetensors"))
        print(f"# {shape}: {size / 1e9:.2f} GB in {len(list(base.glob('*.safetensors')))} shards", flush=True)
        for rule in a.rules.split(","):
            rows = {}
            for method in a.methods.split(","):
                out = root / f"out-{shape}-{rule}-{method}"
                runs = []
                for _ in range(a.repeats):
                    shutil.rmtree(out, ignore_errors=True)  # disk growth counts this run's files
                    runs.append(run_child(["--worker", method, rule, str(base), str(sae), str(out),
                                           "--jobs", str(a.jobs)] + ["--cold"] * a.cold, root))
                r = {k: min(x[k] for x in runs) for k in ("seconds", "synced_seconds", "cpu_seconds")}
                r["disk_gb"] = max(x["disk_bytes"] for x in runs) / 1e9
                r["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs)
                r["new_gb"] = sum(p.stat().st_size for p in new_files(out)) / 1e9
                rows[method] = r
                fps = ",".join(f"{x['fingerprint_s']:.1f}+{x['table_s']:.1f}" for x in runs)
                row(shape, rule, method, r["seconds"], r["synced_seconds"], r["cpu_seconds"],
                    r["peak_rss_mb"], r["new_gb"], r["disk_gb"],
                    f"lock fingerprint + tensor table s: {fps}")
            made = [m for m in ("steerc", "steerc-copy") if m in rows]
            if made:
                s_out = root / f"out-{shape}-{rule}-{made[0]}"
                blob = root / "edited.bin"
                n = edited_bytes_file(s_out, base, blob)
                cp = time_cp([blob], root / "edited.cp", a.repeats, a.cold)
                blob.unlink()
                row(shape, rule, "cp", *cp, new=n / 1e9, notes="cp of the edited tensors' bytes")
                files = new_files(s_out)
                cpn = time_cp(files, root / "new.cp", a.repeats, a.cold)
                row(shape, rule, "cp new", *cpn, new=sum(p.stat().st_size for p in files) / 1e9,
                    notes="cp of the output's new (unlinked) files")
                for m in made:
                    st = rows[m]

                    def ratio(ref: tuple[float, float]) -> str:
                        return (f"{st['seconds'] / max(ref[0], 1e-9):.2f}x, with sync "
                                f"{st['synced_seconds'] / max(ref[1], 1e-9):.2f}x")
                    notes = f"{m}/cp: edited bytes {ratio(cp)}; new bytes {ratio(cpn)}"
                    if "naive" in rows:
                        nv = rows["naive"]
                        notes += (f"; {m}/naive wall {st['seconds'] / nv['seconds']:.2f}x, RSS "
                                  f"{st['peak_rss_mb'] / nv['peak_rss_mb']:.2f}x; same edited tensors: "
                                  f"{same_edits(root / f'out-{shape}-{rule}-{m}', root / f'out-{shape}-{rule}-naive')}")
                    print(f"{shape:14} {rule:7} ratios   {notes}", flush=True)
                if len(made) == 2:
                    outs = [root / f"out-{shape}-{rule}-{m}" for m in made]
                    same = all(filecmp.cmp(outs[0] / p.name, outs[1] / p.name, shallow=False)
                               for p in outs[0].iterdir() if p.is_file())
                    print(f"{shape:14} {rule:7} steerc and steerc-copy outputs byte-identical: {same}",
                          flush=True)
            if not a.keep:
                for method in rows:
                    shutil.rmtree(root / f"out-{shape}-{rule}-{method}", ignore_errors=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
