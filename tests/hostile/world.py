"""Builders for hostile-input tests: a tiny base model, SAE folders to break, specs, and a
CLI runner that fails the test on any traceback.

    w = World(tmp_path); w.model(); sae = w.sae("bad"); spec = w.spec(sae=sae)
    rc, out, err = run_cli(["check", str(spec)])
"""

from __future__ import annotations

import io
import json
import shutil
import struct
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
HIDDEN = 16  # the fixture SAEs' d_in
BODY = "steer res2[1] by 4\nablate res2[2] everywhere\n"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `steerc ARGV` in-process; asserts no traceback."""
    from steerc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    text = err.getvalue() + out.getvalue()
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    return rc, out.getvalue(), err.getvalue()


def sae_tensors(d_in: int = HIDDEN, d_sae: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g),
            "b_enc": torch.zeros(d_sae), "b_dec": torch.zeros(d_in), "threshold": torch.full((d_sae,), 0.1)}


def write_sae(d: Path, tensors: dict | None = None, *, d_in: int = HIDDEN, d_sae: int = 64,
              **cfg_overrides) -> Path:
    """A SAELens folder (cfg.json from the fixture, then `cfg_overrides`) with `tensors`."""
    d.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((FIX / "sae_res" / "cfg.json").read_text())
    cfg.update(d_in=d_in, d_sae=d_sae, **cfg_overrides)
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors if tensors is not None else sae_tensors(d_in, d_sae), str(d / "sae_weights.safetensors"))
    return d


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    """A hand-made safetensors file: u64 header length, JSON header, data."""
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def copy_fixture_sae(d: Path) -> Path:
    shutil.copytree(FIX / "sae_res", d)
    return d


def write_spec(path: Path, model: Path, sae: Path, body: str = BODY, catalogue: Path | None = None) -> Path:
    cat = f'catalogue "{catalogue}"\n' if catalogue else ""
    path.write_text(f'model "{model}"\nsae res2 = "{sae}"\n{cat}\n{body}', encoding="utf-8")
    return path
