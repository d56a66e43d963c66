"""`--target gguf-cvec`: the control vector read back with `gguf.GGUFReader` equals the
reference math (sum of value x decoder row per layer), the layer numbering is llama.cpp's
(checked by running llama.cpp's load/apply rules on the transformers model against the
runtime reference), and everything a control vector cannot express is refused at the rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import steerc
from steerc.arch.registry import ADAPTERS
from steerc.runtime.apply import apply
from steerc.saes import load_sae
from steerc.targets.gguf_cvec import GGUF_FILE, LLAMA_CPP_ARCH, direction_index
from tests.tinymodels import HIDDEN, LAYERS, random_sae_dir, save_tiny

gguf = pytest.importorskip("gguf")

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "specs" / "examples" / "more_json.steer"


def read_cvec(out: Path) -> tuple[dict, dict[int, torch.Tensor]]:
    """(metadata, N -> direction) of `out/control_vector.gguf`, through gguf's own reader."""
    r = gguf.GGUFReader(out / GGUF_FILE)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    dirs = {}
    for t in r.tensors:
        assert t.name.startswith("direction.") and t.tensor_type == gguf.GGMLQuantizationType.F32
        assert len(t.shape) == 1
        dirs[int(t.name.split(".")[1])] = torch.from_numpy(t.data.copy())
    return meta, dirs


def reference(program, saes) -> dict[int, torch.Tensor]:
    """N -> sum of value x decoder row over the adds whose point maps to direction.N, as the
    docs state it: resid_post L -> L, resid_pre L -> L-1."""
    want: dict[int, torch.Tensor] = {}
    for iv in program.interventions:
        row = saes[iv.feature.sae].decoder_rows([iv.feature.index])[0].double()
        for p in iv.points:
            layer = int(p.split(".")[1])
            n = layer if p.endswith("resid_post") else layer - 1
            want[n] = want.get(n, torch.zeros_like(row)) + iv.value * row
    return want


# ----------------------------------------------------------------------------- the demo

def test_demo_spec_reads_back_as_the_reference(tmp_path):
    out = tmp_path / "cv"
    built = steerc.compile(DEMO_SPEC, out, target="gguf-cvec")
    assert built.target == "gguf-cvec" and not built.trust_remote_code
    meta, dirs = read_cvec(out)
    assert meta == {"general.architecture": "controlvector", "controlvector.model_hint": "llama",
                    "controlvector.layer_count": 1}
    sae = load_sae(ROOT / "demo" / "saes" / "blocks.2.hook_resid_post")
    program = steerc.explain(DEMO_SPEC).program
    [iv] = program.interventions
    assert list(dirs) == [2]  # blocks.2.hook_resid_post: llama.cpp's layer 2 output
    want = iv.value * sae.decoder_rows([iv.feature.index])[0].float()
    assert torch.equal(dirs[2], want)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", GGUF_FILE, "steer.lock", "steerc-manifest.json"]  # no checkpoint files


def test_manifest_records_the_file_and_every_direction(tmp_path):
    out = tmp_path / "cv"
    steerc.compile(DEMO_SPEC, out, target="gguf-cvec")
    m = json.loads((out / "steerc-manifest.json").read_text())
    data = (out / GGUF_FILE).read_bytes()
    assert m["files"] == {GGUF_FILE: hashlib.sha256(data).hexdigest()}
    assert m["shards"] == {GGUF_FILE: "new"} and m["config_sha256"] is None
    assert "files (not .safetensors)" in m["hash_scope"]
    assert list(m["tensors"]) == ["direction.2"]
    [edit] = m["edits"]
    assert edit["tensor"] == "direction.2" and edit["after_sha256"] == m["tensors"]["direction.2"]
    assert edit["ops"][0]["point"] == "blocks.2.hook_resid_post"
    card = (out / "README.md").read_text()
    assert "--control-vector control_vector.gguf" in card and "from_pretrained" not in card


def test_manifest_matches_the_schema(tmp_path):
    import jsonschema

    from steerc.targets import TARGET_NAMES, TARGETS

    schema = json.loads((ROOT / "specs" / "schemas" / "manifest.schema.json").read_text())
    # the schema's target lists are the registry's (a target added without them fails here)
    assert schema["properties"]["target"]["enum"] == list(TARGETS)
    assert schema["properties"]["requested_target"]["enum"] == list(TARGET_NAMES)
    steerc.compile(DEMO_SPEC, tmp_path / "cv", target="gguf-cvec")
    jsonschema.validate(json.loads((tmp_path / "cv" / "steerc-manifest.json").read_text()), schema)


def test_output_is_byte_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    steerc.compile(DEMO_SPEC, a, target="gguf-cvec")
    steerc.compile(DEMO_SPEC, b, target="gguf-cvec")
    for name in (GGUF_FILE, "steerc-manifest.json", "README.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_explain_and_the_cli_say_what_the_output_is(tmp_path, capsys):
    text = steerc.explain(DEMO_SPEC, target="gguf-cvec").render()
    assert "-> control vector: direction.2" in text and "weight edit" not in text
    from steerc.cli import main

    assert main(["compile", str(DEMO_SPEC), "-o", str(tmp_path / "cv"), "--target", "gguf-cvec"]) == 0
    said = capsys.readouterr()
    assert "--control-vector" in said.out + said.err and "plain checkpoint" not in said.out + said.err


def test_verify_refuses_clearly(tmp_path):
    out = tmp_path / "cv"
    steerc.compile(DEMO_SPEC, out, target="gguf-cvec")
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.verify(out)
    [d] = e.value.diagnostics
    assert d.code == "E419" and "not a transformers checkpoint" in d.message
    assert "--target weights" in d.hint


# ------------------------------------------------------------------- tiny random models

FAMILIES = ("llama", "gemma2", "gpt2")  # gemma2: post-norms, not expressible as weights


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    """A tiny model of one family and three random SAEs: resid_post 1, resid_pre 2 (the same
    residual point, so both land in direction.1) and resid_post 2 (direction.2)."""
    d = tmp_path_factory.mktemp(request.param)
    model = save_tiny(request.param, d / "model")
    hooks = {"a": "blocks.1.hook_resid_post", "b": "blocks.2.hook_resid_pre",
             "c": f"blocks.{LAYERS - 1}.hook_resid_post"}
    for i, (alias, hook) in enumerate(hooks.items()):
        random_sae_dir(HIDDEN, 16, hook, d / alias, seed=i + 1)
    head = f'model "{d / "model"}"\n' + "".join(f'sae {a} = "{d / a}"\n' for a in hooks) + "\n"
    return request.param, d, head, model


def _compile(family, body: str, tmp_path, name="s"):
    arch, d, head, _ = family
    spec = tmp_path / f"{name}.steer"
    spec.write_text(head + body)
    return spec


def test_tiny_models_read_back_as_the_reference(family, tmp_path):
    arch, d, _, _ = family
    spec = _compile(family, "steer a[3] by 2.5\nsteer b[7] by -1.25\nsteer a[5] by 0.5\n"
                            "steer c[0] by 4\nsteer c[9] by -3e-2\n", tmp_path)
    steerc.compile(spec, tmp_path / "out", target="gguf-cvec")
    meta, dirs = read_cvec(tmp_path / "out")
    program = steerc.explain(spec).program
    saes = {b.alias: load_sae(b.path) for b in program.saes}
    want = reference(program, saes)
    assert meta["controlvector.model_hint"] == LLAMA_CPP_ARCH[arch]
    assert meta["controlvector.layer_count"] == len(dirs) == 2
    assert sorted(dirs) == sorted(want) == [1, 2]
    for n, v in dirs.items():
        assert v.shape == (HIDDEN,)
        torch.testing.assert_close(v.double(), want[n], rtol=0, atol=1e-6)


def _layers(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def _llama_cpp_forward(model, out: Path, ids):
    """Logits of `model` with the control vector applied the way llama.cpp does it:
    common_control_vector_load_one sums direction.N into buf[(N-1)*d : N*d] (N >= 1),
    llama_adapter_cvec::apply fills tensors[il] = buf[(il-1)*d : il*d] for il in
    1..n_layer-1, and build_cvec adds tensors[il] to layer il's output (`l_out`)."""
    _, dirs = read_cvec(out)
    d, n_layer = HIDDEN, len(_layers(model))
    assert 0 not in dirs  # the loader refuses direction.0
    buf = torch.zeros(d * max(dirs))
    for n, v in dirs.items():
        buf[(n - 1) * d:n * d] += v
    tensors = {il: buf[(il - 1) * d:il * d] for il in range(1, n_layer) if il * d <= buf.numel()}

    def add(il):
        def hook(_mod, _args, output):
            if isinstance(output, tuple):
                return (output[0] + tensors[il],) + output[1:]
            return output + tensors[il]
        return hook

    handles = [_layers(model)[il].register_forward_hook(add(il)) for il in tensors]
    try:
        with torch.no_grad():
            return model(ids).logits
    finally:
        for h in handles:
            h.remove()


def test_llama_cpp_numbering_equals_the_reference_semantics(family, tmp_path):
    """The file, read with llama.cpp's own rules, steers the model exactly like steerc's
    runtime reference (hooks at the spec's points): an off-by-one layer would differ."""
    arch, d, _, model = family
    spec = _compile(family, "steer a[3] by 2.5\nsteer b[7] by -1.25\nsteer c[0] by 4\n", tmp_path)
    steerc.compile(spec, tmp_path / "out", target="gguf-cvec")
    program = steerc.explain(spec).program
    saes = {b.alias: load_sae(b.path) for b in program.saes}
    ids = torch.randint(4, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(ids).logits
        with apply(model, program, saes):
            ref = model(ids).logits
    got = _llama_cpp_forward(model, tmp_path / "out", ids)
    assert (ref - base).abs().max() > 1e-2  # the rules do move the logits
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)


def test_direction_index_is_llama_cpps_layer_output():
    """resid_post L is layer L's output (direction.L); resid_pre L is layer L-1's output;
    llama.cpp has no direction.0 and never adds before layer 1's output."""
    assert direction_index("blocks.1.hook_resid_post") == 1
    assert direction_index("blocks.5.hook_resid_post") == 5
    assert direction_index("blocks.5.hook_resid_pre") == 4
    assert direction_index("blocks.2.hook_resid_pre") == 1
    for p in ("hook_embed", "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre",
              "blocks.0.hook_resid_post", "blocks.3.hook_resid_mid", "blocks.3.hook_mlp_out",
              "blocks.3.hook_attn_out"):
        assert direction_index(p) is None, p


def test_every_supported_family_has_a_llama_cpp_architecture():
    """A family added to steerc.arch without a model hint would fail here, not at compile."""
    known = set(gguf.MODEL_ARCH_NAMES.values())
    for model_type in ADAPTERS:
        assert LLAMA_CPP_ARCH.get(model_type) in known, model_type


# ----------------------------------------------------------------------------- refusals

REFUSED = [
    ("clamp a[3] to 1", "E416", "set_activation"),
    ("scale a[3] by 2", "E416", "scale_activation"),
    ("suppress a[3]", "E416", "set_activation"),
    ("ablate a[3] everywhere", "E416", "--target weights"),
    ("ablate a[3]", "E416", "projection"),
    ("when a[1] > 0.5 { steer a[3] by 2 }", "E416", "condition"),
    ("steer a[3] by 2 on generated", "E416", "position scope"),
    ("steer e[3] by 2", "E417", "never at hook_embed"),
    ("steer p0[3] by 2", "E417", "never at blocks.0.hook_resid_post"),
    ("steer p1[3] by 2", "E417", "never at blocks.1.hook_resid_pre"),
    ("steer m[3] by 2", "E417", "never at blocks.1.hook_mlp_out"),
]


@pytest.fixture(scope="module")
def refusal_head(tmp_path_factory):
    d = tmp_path_factory.mktemp("refuse")
    save_tiny("llama", d / "model")
    hooks = {"a": "blocks.1.hook_resid_post", "e": "hook_embed", "p0": "blocks.0.hook_resid_post",
             "p1": "blocks.1.hook_resid_pre", "m": "blocks.1.hook_mlp_out"}
    for i, (alias, hook) in enumerate(hooks.items()):
        random_sae_dir(HIDDEN, 16, hook, d / alias, seed=i)
    return f'model "{d / "model"}"\n' + "".join(f'sae {a} = "{d / a}"\n' for a in hooks)


def errors(e) -> list:
    return [d for d in e.value.diagnostics if d.is_error]


@pytest.mark.parametrize("rule,code,why", REFUSED)
def test_refused_at_the_rule(refusal_head, tmp_path, rule, code, why):
    head_lines = refusal_head.count("\n")
    spec = tmp_path / "r.steer"
    spec.write_text(refusal_head + "steer a[5] by 1\n" + rule + "\n")
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.compile(spec, tmp_path / "out", target="gguf-cvec")
    [diag] = errors(e)  # (unused SAEs of the shared head are warnings)
    assert diag.code == code and why in diag.message + " " + diag.hint
    assert "cannot be lowered to a llama.cpp control vector" in diag.message
    assert diag.span is not None and diag.span.line == head_lines + 2
    assert "--target" in diag.hint
    assert not (tmp_path / "out").exists()


def test_enforce_json_and_empty_specs_are_refused(refusal_head, tmp_path):
    spec = tmp_path / "j.steer"
    spec.write_text(refusal_head + "steer a[5] by 1\nenforce json format\n")
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.compile(spec, tmp_path / "out", target="gguf-cvec")
    assert [d.code for d in errors(e)] == ["E418"]
    spec.write_text(refusal_head)
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.compile(spec, tmp_path / "out", target="gguf-cvec")
    assert [d.code for d in errors(e)] == ["E418"]
    assert not (tmp_path / "out").exists()


def test_without_the_gguf_package_it_is_a_diagnostic(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_gguf(name, *a, **kw):
        if name == "gguf":
            raise ImportError("No module named 'gguf'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_gguf)
    with pytest.raises(steerc.DiagnosticError) as e:
        steerc.compile(DEMO_SPEC, tmp_path / "out", target="gguf-cvec")
    [d] = e.value.diagnostics
    assert d.code == "E418" and "steerc[gguf]" in d.hint
    assert not (tmp_path / "out").exists()
