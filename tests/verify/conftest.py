"""A tiny Llama, an SAE whose encoder is its decoder's transpose (orthonormal rows, so a
suppressed feature reads back as exactly 0), a catalogue and specs; compiled once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.tinymodels import HIDDEN, random_sae_dir, save_tiny

HOOK = "blocks.1.hook_resid_post"
D_SAE = 16
LABELS = ["alpha topic", "json key", "json brace", "python code", "english prose", "greeting",
          "formal tone", "city name"]
TAGS = {1: ["format:json"], 2: ["format:json"], 3: ["format:code"], 4: ["format:prose"]}
HEAD = 'model "model"\nsae res = "sae"\ncatalogue "catalogue.json"\n'
SPECS = {
    # hooks target: suppress is a hook module
    "suppress": HEAD + 'suppress res["alpha topic"]\nexpect "ab" not mentions "qqqq"\n',
    # weights target: steer is a bias edit
    "steer": HEAD + 'steer res["json key"] by 3\nexpect "ab" not mentions "qqqq"\n',
    "failing": HEAD + 'suppress res["alpha topic"]\nexpect "ab" mentions "qqqq"\n'
               'expect "ab" not mentions "qqqq"\n',
    "json": HEAD + 'enforce json format\nexpect "ab" is json\n',
}


def orthonormal_sae(directory: Path) -> Path:
    random_sae_dir(HIDDEN, D_SAE, HOOK, directory, "standard")  # cfg.json
    gen = torch.Generator().manual_seed(7)
    q, _ = torch.linalg.qr(torch.randn(HIDDEN, D_SAE, generator=gen))   # (d, n) orthonormal cols
    t = {"W_enc": q.contiguous(), "W_dec": q.T.contiguous(), "b_dec": torch.zeros(HIDDEN),
         "b_enc": torch.full((D_SAE,), 0.05)}
    save_file(t, str(directory / "sae_weights.safetensors"), metadata={"format": "pt"})
    return directory


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Directory with model/, sae/, catalogue.json and a neutral text file."""
    root = tmp_path_factory.mktemp("verify")
    save_tiny("llama", root / "model")
    orthonormal_sae(root / "sae")
    feats = [{"sae": "res", "index": i, "label": lab, "aliases": [], "tags": TAGS.get(i, []),
              "max_activation": 2.0, "density": 0.1, "description": ""} for i, lab in enumerate(LABELS)]
    (root / "catalogue.json").write_text(json.dumps({"version": 1, "saes": [
        {"id": "res", "hook": HOOK, "d_sae": D_SAE, "sha256": None, "model": "tiny"}],
        "features": feats}))
    (root / "neutral.txt").write_text("the cat sat on the mat.\n\nA quiet day in the town.\n")
    return root


@pytest.fixture(scope="session")
def compiled(tiny):
    """name -> compiled checkpoint dir (paths relative to `tiny`, as a user compiles)."""
    import os

    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    out = {}
    cwd = os.getcwd()
    os.chdir(tiny)
    try:
        for name, text in SPECS.items():
            (tiny / f"{name}.steer").write_text(text)
            program = load_program(f"{name}.steer")
            compile_program(program, f"out_{name}", force=True)
            out[name] = tiny / f"out_{name}"
    finally:
        os.chdir(cwd)
    return out
