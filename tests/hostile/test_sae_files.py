"""Broken and hostile SAE files through the CLI: exit 1, an E3xx message, never a traceback
(run_cli fails the test on one). Pickles are refused unless --allow-pickle, and even then
torch.load(weights_only=True) refuses code."""

from __future__ import annotations

import os
import struct

import pytest
import torch

from tests.hostile.world import (BODY, copy_fixture_sae, run_cli, sae_tensors, safetensors_bytes, write_sae,
                                 write_spec)


def _nan_in_used_row():
    t = sae_tensors()
    t["W_dec"][1, 2] = float("nan")  # feature 1 is steered by BODY
    return t


def _inf_in_used_column():
    t = sae_tensors()
    t["W_enc"][0, 2] = float("inf")  # feature 2
    return t


def _missing_b_enc():
    t = sae_tensors()
    del t["b_enc"]
    return t


def _truncate(d):
    f = d / "sae_weights.safetensors"
    f.write_bytes(f.read_bytes()[:-100])


def _garbage(d):
    (d / "sae_weights.safetensors").write_bytes(os.urandom(3000))


def _huge_header_length(d):
    (d / "sae_weights.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}")


def _huge_tensor_shape(d):
    n = 1 << 40  # 4 TiB claimed, 0 bytes present
    (d / "sae_weights.safetensors").write_bytes(safetensors_bytes(
        {"W_enc": {"dtype": "F32", "shape": [16, n], "data_offsets": [0, 64 * n]}}))


def _empty(d):
    (d / "sae_weights.safetensors").write_bytes(b"")


def _bad_cfg(d):
    (d / "cfg.json").write_text("{not json")


# (case, how to build the SAE folder, expected code, text the message must contain, commands)
BROKEN = [
    ("truncated", _truncate, "E308", "data section", ("check", "compile")),
    ("random bytes", _garbage, "E308", "header claims", ("check", "compile")),
    ("header claims 2^60 bytes", _huge_header_length, "E308", "header claims", ("check", "compile")),
    ("tensor claims 4 TiB", _huge_tensor_shape, "E308", "ends at byte", ("check", "compile")),
    ("empty file", _empty, "E308", "not a safetensors file", ("check", "compile")),
    ("cfg.json not JSON", _bad_cfg, "E303", "not valid JSON", ("check", "compile")),
]
WRITTEN = [
    ("NaN in a used decoder row", dict(tensors=_nan_in_used_row()), "E305", "NaN or Inf", ("compile",)),
    ("Inf in a used encoder column", dict(tensors=_inf_in_used_column()), "E305", "NaN or Inf", ("compile",)),
    ("missing b_enc", dict(tensors=_missing_b_enc()), "E302", "missing tensor 'b_enc'", ("check", "compile")),
    ("unknown architecture", dict(architecture="quantum"), "E306", "unknown architecture 'quantum'",
     ("check", "compile")),
    ("shapes differ from cfg", dict(tensors=sae_tensors(16, 32)), "E304", "has shape", ("check", "compile")),
    ("d_in 24 vs model hidden 16", dict(d_in=24), "E309", "hidden size is 16", ("compile",)),
]


def _expect_failure(argv, code, text):
    rc, out, err = run_cli(argv)
    assert rc == 1, (rc, out, err)
    assert f"[{code}]" in err and text in err, err


@pytest.mark.parametrize("case,breaker,code,text,commands", BROKEN, ids=[b[0] for b in BROKEN])
def test_corrupt_sae_files(base_model, tmp_path, case, breaker, code, text, commands):
    sae = copy_fixture_sae(tmp_path / "sae")
    breaker(sae)
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    for cmd in commands:
        argv = [cmd, str(spec)] + (["-o", str(tmp_path / "out")] if cmd == "compile" else [])
        _expect_failure(argv, code, text)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case,kw,code,text,commands", WRITTEN, ids=[w[0] for w in WRITTEN])
def test_bad_sae_contents(base_model, tmp_path, case, kw, code, text, commands):
    kw = dict(kw)
    sae = write_sae(tmp_path / "sae", kw.pop("tensors", None), **kw)
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    for cmd in commands:
        argv = [cmd, str(spec)] + (["-o", str(tmp_path / "out")] if cmd == "compile" else [])
        _expect_failure(argv, code, text)
    assert not (tmp_path / "out").exists()


def _goodfire_pickle(d, extra=None):
    d.mkdir()
    sd = {"encoder_linear.weight": torch.randn(64, 16), "encoder_linear.bias": torch.zeros(64),
          "decoder_linear.weight": torch.randn(16, 64), "decoder_linear.bias": torch.zeros(16)}
    sd.update(extra or {})
    torch.save(sd, d / "tiny-SAE-l1.pth")  # layer 1 from the file name, as Goodfire names them
    return d


@pytest.mark.parametrize("cmd", ["check", "explain", "compile", "trace"])
def test_pickle_refused_without_allow_pickle(base_model, tmp_path, cmd):
    sae = _goodfire_pickle(tmp_path / "gf")
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    argv = {"check": ["check", str(spec)], "explain": ["explain", str(spec)],
            "compile": ["compile", str(spec), "-o", str(tmp_path / "out")],
            "trace": ["trace", "hello", "--model", str(base_model), "--sae", str(sae)]}[cmd]
    _expect_failure(argv, "E307", "--allow-pickle")
    assert not (tmp_path / "out").exists()


def test_allow_pickle_threads_down_to_the_loader(base_model, tmp_path):
    sae = _goodfire_pickle(tmp_path / "gf")
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    assert run_cli(["check", str(spec), "--allow-pickle"])[0] == 0
    assert run_cli(["explain", str(spec), "--allow-pickle"])[0] == 0
    rc, out, err = run_cli(["compile", str(spec), "-o", str(tmp_path / "out"), "--allow-pickle"])
    assert rc == 0, err
    assert (tmp_path / "out" / "steerc-manifest.json").is_file()


class _RunsCode:
    """Unpickling this runs `touch marker` (what a malicious SAE file would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_even_when_allowed(base_model, tmp_path):
    marker = tmp_path / "PWNED"
    sae = _goodfire_pickle(tmp_path / "gf", {"payload": _RunsCode(marker)})
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    for cmd in (["check", str(spec), "--allow-pickle"],
                ["compile", str(spec), "-o", str(tmp_path / "out"), "--allow-pickle"]):
        _expect_failure(cmd, "E308", "other than tensors")
    assert not marker.exists()


def test_unknown_layout_is_named(base_model, tmp_path):
    sae = tmp_path / "sae"
    sae.mkdir()
    (sae / "weights.bin").write_bytes(b"\x00" * 64)
    spec = write_spec(tmp_path / "s.steer", base_model, sae, BODY)
    _expect_failure(["check", str(spec)], "E301", "not a recognised SAE layout")


def test_verify_takes_allow_pickle_too(base_model, tmp_path):
    """A checkpoint compiled from a pickled SAE: verify refuses the pickle (E307) unless
    it gets --allow-pickle as well."""
    sae = _goodfire_pickle(tmp_path / "gf")
    spec = write_spec(tmp_path / "s.steer", base_model, sae)
    out = tmp_path / "out"
    assert run_cli(["compile", str(spec), "-o", str(out), "--allow-pickle"])[0] == 0
    _expect_failure(["verify", str(out), "--max-windows", "1"], "E307", "--allow-pickle")
    rc, stdout, err = run_cli(["verify", str(out), "--max-windows", "1", "--allow-pickle"])
    # the SAE is random, so its features may move against their rules (E540, exit 1): what
    # matters here is that the pickle loads and the whole report is measured
    assert rc in (0, 1) and "E307" not in err and "result: " in stdout, err
    assert rc == 0 or "error[E540]" in stdout, stdout
