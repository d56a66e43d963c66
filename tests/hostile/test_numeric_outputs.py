"""A compile never writes a NaN or an infinity, and never steers along a zero direction.

Named cases of the review (all-zero decoder row + `ablate everywhere`, `steer X by 1e300`, a
`max_activation` of 1.7e308 with `clamp ... to 5x max`), dtype overflow on fp16/bf16 bases,
sums of rules, a base tensor already holding an infinity, each on tiny models in fp32, bf16
and fp16: exit 1, the code on the rule's line, nothing at the output. Then the two checks
as properties: `require_finite` on any block, `dumps_json` on any document.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from steerc.checkpoint.finite import NonFiniteOutput, require_finite
from steerc.diagnostics import DiagnosticError
from steerc.files.write import dumps_json
from tests.hostile.world import FIX, run_cli, sae_tensors, write_sae, write_spec
from tests.tinymodels import save_tiny

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("numeric")
    out = {}
    for name, dt in DTYPES.items():
        out[name] = root / name
        save_tiny("llama", out[name], hidden_size=16, intermediate_size=32, head_dim=8, dtype=dt)
    return out


@pytest.fixture(scope="module")
def dead_sae(tmp_path_factory):
    """The fixture-shaped SAE with feature 2's decoder row all zero, feature 5's 1e-9."""
    t = sae_tensors()
    t["W_dec"][2] = 0
    t["W_dec"][5] = 1e-9
    return write_sae(tmp_path_factory.mktemp("dead") / "sae", t)


def compile_fails(tmp_path, model, sae, body, code, *extra, catalogue=None) -> str:
    spec = write_spec(tmp_path / "s.steer", model, sae, body, catalogue)
    out = tmp_path / "out"
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--no-progress", *extra])
    assert rc == 1 and f"[{code}]" in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".steerc-" in p.name]
    return err


def compile_ok(tmp_path, model, sae, body, *extra) -> dict:
    spec = write_spec(tmp_path / "s.steer", model, sae, body)
    out = tmp_path / "out"
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--no-progress", *extra])
    assert rc == 0, err
    for f in out.glob("*.safetensors"):
        for k, t in load_file(f).items():
            assert not t.is_floating_point() or bool(torch.isfinite(t).all()), (f.name, k)
    return json.loads((out / "steerc-manifest.json").read_text())  # strict JSON parses


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("rule, what", [
    ("ablate res2[2] everywhere", "is zero"),          # was NaN in every writer
    ("steer res2[2] by 3", "is zero"),                 # was a silent no-op
    ("suppress res2[2]", "is zero"),
    ("ablate res2[5] everywhere", "is negligible"),    # 1e-9: numerically nothing
])
def test_zero_or_negligible_direction(models, dead_sae, tmp_path, dtype, rule, what):
    err = compile_fails(tmp_path, models[dtype], dead_sae, rule + "\n", "E430")
    assert f"s.steer:4:1: error[E430]" in err and what in err


@pytest.mark.parametrize("target", ["weights", "hooks"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_steer_by_1e300(models, tmp_path, dtype, target):
    err = compile_fails(tmp_path, models[dtype], FIX / "sae_res", "steer res2[1] by 1e300\n",
                        "E432", "--target", target)
    assert "s.steer:4:1" in err and "infinity" in err


def test_clamp_5x_a_huge_max_activation(models, tmp_path):
    """max_activation 1.7e308 (valid JSON, finite) x 5 is inf: refused at check time too,
    on the `5x max` span, before any lock or manifest could hold `Infinity`."""
    cat = json.loads((FIX / "catalogue.json").read_text())
    cat["features"][1]["max_activation"] = 1.7e308
    (tmp_path / "cat.json").write_text(json.dumps(cat))
    body = 'clamp res2["json key"] to 5x max\n'
    err = compile_fails(tmp_path, models["fp32"], FIX / "sae_res", body, "E431",
                        catalogue=tmp_path / "cat.json")
    assert "s.steer:5:27: error[E431]" in err
    rc, _, err = run_cli(["check", str(tmp_path / "s.steer"), "--write-lock"])
    assert rc == 1 and "[E431]" in err and not (tmp_path / "steer.lock").exists()


@pytest.mark.parametrize("value, dtype, refused", [
    ("1e5", "fp16", True),      # 1e5 x |d| > 65504: inf once stored as fp16
    ("1e5", "bf16", False),     # the same rule fits bf16 and fp32
    ("1e5", "fp32", False),
    ("1e39", "bf16", True),     # finite in Python, inf in fp32 and bf16
])
@pytest.mark.parametrize("target", ["weights", "hooks"])
def test_dtype_overflow(models, tmp_path, value, dtype, refused, target):
    body = f"steer res2[1] by {value}\n"
    if refused:
        err = compile_fails(tmp_path, models[dtype], FIX / "sae_res", body, "E432", "--target", target)
        assert ("float16" if dtype == "fp16" else "float") in err
    else:
        compile_ok(tmp_path, models[dtype], FIX / "sae_res", body, "--target", target)


@pytest.mark.parametrize("dtype, value", [("fp16", "60000"), ("bf16", "3.3e38"), ("fp32", "3.3e38")])
def test_rules_that_overflow_only_together(models, tmp_path, dtype, value):
    """Each rule fits; their sum in one bias does not: caught as the bias streams out (E433),
    on the span of a rule that writes it."""
    body = f"steer res2[1] by {value}\nsteer res2[1] by {value}\n"
    err = compile_fails(tmp_path, models[dtype], FIX / "sae_res", body, "E433")
    assert "s.steer:4:1" in err and "down_proj.bias" in err


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_base_tensor_holding_an_infinity(models, tmp_path, dtype):
    """An edited tensor whose base already holds an infinity: the output would too (E433)."""
    import shutil

    m = tmp_path / "m"
    shutil.copytree(models[dtype], m)
    t = load_file(m / "model.safetensors")
    t["model.layers.0.mlp.down_proj.weight"][0, 0] = float("inf")
    save_file(t, m / "model.safetensors", metadata={"format": "pt"})
    err = compile_fails(tmp_path, m, FIX / "sae_res", "ablate res2[1] everywhere\n", "E433")
    assert "model.layers.0.mlp.down_proj.weight" in err and ("infinity" in err or "NaN" in err)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_ordinary_rules_still_compile(models, tmp_path, dtype):
    manifest = compile_ok(tmp_path, models[dtype], FIX / "sae_res",
                          "steer res2[1] by 4\nablate res2[3] everywhere\n")
    assert manifest["edits"]


# ---- the checks as properties ------------------------------------------------------------

SPECIALS = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from(list(DTYPES.values())), rows=st.integers(1, 64), cols=st.integers(1, 40),
       scale=st.sampled_from([1.0, 1e4, 6e4, 1e38, 3.3e38]), special=st.one_of(st.none(), SPECIALS),
       where=st.floats(0, 1, exclude_max=True), seed=st.integers(0, 2**16))
def test_require_finite_raises_exactly_on_non_finite(dtype, rows, cols, scale, special, where, seed):
    """Raises iff the stored block holds a NaN/inf, whatever its dtype; large finite values
    whose sum overflows (a false alarm of the fast path) never raise."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(rows, cols, generator=g) * scale).clamp(max=torch.finfo(dtype).max).to(dtype)
    if special is not None:
        x.view(-1)[int(where * x.numel())] = special
    bad = not bool(torch.isfinite(x).all())
    if bad:
        with pytest.raises(NonFiniteOutput):
            require_finite("t", x)
    else:
        require_finite("t", x)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(doc=JSON, special=SPECIALS, data=st.data())
def test_dumps_json_is_strict(doc, special, data):
    """Finite documents: the same text as json.dumps. One non-finite number anywhere: E426
    naming its JSON path, never `NaN`/`Infinity` text."""
    assert dumps_json(doc, "doc", sort_keys=True) == json.dumps(doc, sort_keys=True)
    holder = {"x": [doc, {"k": special}]}
    with pytest.raises(DiagnosticError) as e:
        dumps_json(holder, "the manifest")
    d = e.value.diagnostics[0]
    assert d.code == "E426" and "$.x[1].k" in d.message


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from(list(DTYPES)), op=st.sampled_from(["steer", "clamp", "scale"]),
       mantissa=st.floats(-9.99, 9.99), exponent=st.integers(-5, 310), twice=st.booleans(),
       target=st.sampled_from(["auto", "hooks"]))
def test_any_numeric_literal_compiles_finite_or_is_refused(models, tmp_path_factory, dtype, op,
                                                          mantissa, exponent, twice, target):
    """Numeric literals from 1e-5 to 1e310 in any rule, once or twice, on every dtype: the
    compile writes only finite tensors (and strict JSON), or is refused with a diagnostic;
    never an internal error, never a non-finite output."""
    tmp = tmp_path_factory.mktemp("lit")
    value = f"{mantissa:.3f}e{exponent}"
    rule = {"steer": f"steer res2[1] by {value}", "clamp": f"clamp res2[1] to {value}",
            "scale": f"scale res2[1] by {value}"}[op]
    body = rule + "\n" + (rule.replace("res2[1]", "res2[3]") + "\n" if twice else "")
    spec = write_spec(tmp / "s.steer", models[dtype], FIX / "sae_res", body)
    out = tmp / "out"
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--no-progress", "--target", target])
    if rc == 0:
        for f in out.glob("*.safetensors"):
            for k, t in load_file(f).items():
                assert not t.is_floating_point() or bool(torch.isfinite(t).all()), (f.name, k)
        json.loads((out / "steerc-manifest.json").read_text(),
                   parse_constant=lambda c: pytest.fail(f"{c} in the manifest"))
    else:
        assert rc == 1 and "error[E" in err and not out.exists(), err
