"""The SAE content-hash cache is keyed by every file of steerc.saes, not only sae.py."""

from __future__ import annotations

from pathlib import Path

from steerc.compiler import load as load_mod
from steerc.compiler.load import DiskEnvironment, saes_code_sha256
from tests.hostile.world import FIX


def test_a_change_to_a_format_loader_invalidates_cached_sae_hashes(monkeypatch):
    env = DiskEnvironment()
    first = env.sae_info(FIX / "sae_res").sha256
    assert env.sae_info(FIX / "sae_res").sha256 == first  # served from the cache

    from steerc.saes.sae import SAE

    monkeypatch.setattr(SAE, "sha256", lambda self: "f" * 64)  # "the hashing code changed"
    real = load_mod.file_sha256

    def edited(path):  # formats/saelens.py (not sae.py) was edited
        return "edited" if Path(path).as_posix().endswith("saes/formats/saelens.py") else real(path)

    monkeypatch.setattr(load_mod, "file_sha256", edited)
    saes_code_sha256.cache_clear()
    try:
        assert env.sae_info(FIX / "sae_res").sha256 == "f" * 64
    finally:
        saes_code_sha256.cache_clear()


def test_the_key_covers_layout_and_every_format():
    import steerc.saes

    root = Path(steerc.saes.__file__).parent
    names = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}
    assert {"sae.py", "layout.py", "formats/saelens.py", "formats/pickled.py"} <= names
