"""Hook-name normalisation and the npz memory-map path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerc.saes import normalize_hook_name
from steerc.saes.store import NpzStore


@pytest.mark.parametrize("raw,want", [
    ("blocks.3.hook_resid_post", "blocks.3.hook_resid_post"),
    ("blocks.0.attn.hook_z", "blocks.0.attn.hook_z"),
    ("hook_embed", "hook_embed"),
    ("layers.10", "blocks.10.hook_resid_post"),
    ("model.layers.17.output", "blocks.17.hook_resid_post"),
    ("h.3", "blocks.3.hook_resid_post"),
    ("layers.0.mlp", "blocks.0.hook_mlp_out"),
    ("h.3.attn", "blocks.3.hook_attn_out"),
    ("layers.2.self_attn", "blocks.2.hook_attn_out"),
    ("embed_tokens", "hook_embed"),
    ("blocks.3.resid", None),
    ("layers.x", None),
])
def test_normalize_hook_name(raw, want):
    assert normalize_hook_name(raw) == want


def test_uncompressed_npz_is_memory_mapped_and_exact(tmp_path):
    a = np.random.default_rng(0).standard_normal((7, 33)).astype(np.float32)
    np.savez(tmp_path / "u.npz", W=a, v=a[0])
    st = NpzStore(tmp_path / "u.npz")
    assert st.shape("W") == (7, 33) and st.dtype("W") == torch.float32
    assert isinstance(st._array("W"), np.memmap)  # read in place, not unzipped whole
    assert torch.equal(st.cols("W", [5, 1]), torch.from_numpy(a[:, [5, 1]]))
    assert torch.equal(st.rows("v", [2]), torch.from_numpy(a[0, [2]]))
    np.savez_compressed(tmp_path / "c.npz", W=a)
    sc = NpzStore(tmp_path / "c.npz")
    assert not isinstance(sc._array("W"), np.memmap)
    assert torch.equal(sc.get("W"), torch.from_numpy(a))
