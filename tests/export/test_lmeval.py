"""`steerc export --to lm-eval`: the file lm-evaluation-harness's `steered` model reads, read
back and applied the way lm-eval applies it (lm_eval/models/hf_steered.py: a forward hook on
each named module of `model.base_model` adding `steering_coefficient * steering_vector` to
its output, element 0 of a tuple), equals steerc's reference semantics (`steerc.runtime.apply`)
on the demo model; every rule it cannot express is refused at the rule."""

from __future__ import annotations

import csv
import dataclasses
import io
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from steerc.cli import main
from steerc.compiler.ir import HubSource
from steerc.diagnostics import DiagnosticError
from steerc.export import lmeval

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
REQUIRED = (DEMO / "model" / "config.json", DEMO / "saes" / "blocks.2.hook_resid_post" / "cfg.json",
            DEMO / "catalogue.json")
pytestmark = pytest.mark.skipif(not all(p.exists() for p in REQUIRED), reason="demo artefacts absent")

HEAD = f'model "{DEMO / "model"}"\nsae res2 = "{DEMO / "saes" / "blocks.2.hook_resid_post"}"\n' \
       f'catalogue "{DEMO / "catalogue.json"}"\n'


@pytest.fixture(scope="module")
def demo():
    from steerc.hfload import load_model, load_tokenizer

    model = load_model(DEMO / "model")
    tok = load_tokenizer(DEMO / "model")
    ids = tok(["def main():\n    return 1", "The purpose of this License is"], return_tensors="pt",
              padding=True).input_ids
    return model, ids


def _spec(tmp_path, body: str, name: str = "s.steer") -> Path:
    p = tmp_path / name
    p.write_text(HEAD + body, encoding="utf-8")
    return p


@contextmanager
def lm_eval_steer(model, config: dict):
    """hf_steered.py's `steer()` and `add` (lines 22-63, 124-131, 209-228), for `add` entries."""
    hook_to_steer = {hp: (lambda acts, v=e["steering_coefficient"] * e["steering_vector"]: acts + v)
                     for hp, e in config.items()}
    handles = []

    def create_hook(hp):
        def hook_fn(module, input, output):
            if isinstance(output, tuple):
                return (hook_to_steer[hp](output[0]), *output[1:])
            return hook_to_steer[hp](output)
        return hook_fn

    for name, module in model.base_model.named_modules():
        if name in hook_to_steer:
            handles.append(module.register_forward_hook(create_hook(name)))
    assert len(handles) == len(hook_to_steer), "not all hookpoints could be resolved"
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _reference(model, ids, spec: Path):
    from steerc.compiler.build_checkpoint import load_saes
    from steerc.compiler.load import load_program
    from steerc.runtime.apply import apply

    program = load_program(spec)
    with torch.no_grad(), apply(model, program, load_saes(program)):
        return model(ids).logits


def _logits(model, ids, config):
    with torch.no_grad(), lm_eval_steer(model, config):
        return model(ids).logits


SPECS = {
    "one amplify": 'amplify res2[143] by 20\n',
    "three features, one point, summed": 'steer res2[3] by 4\nsteer res2[17] by -2.5\namplify res2[143] by 6\n',
    "the same feature twice": 'steer res2[5] by 3\nsteer res2[5] by 1.5\n',
}


@pytest.mark.parametrize("body", SPECS.values(), ids=SPECS.keys())
def test_pt_applied_like_lm_eval_equals_the_reference(tmp_path, demo, body):
    model, ids = demo
    spec, out = _spec(tmp_path, body), tmp_path / "steer.pt"
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(out)]) == 0
    config = torch.load(out, weights_only=True)  # what lm-eval < 0.4.9.2 used; >= loads it too
    assert list(config) == ["layers.2"]  # blocks.2.hook_resid_post: output of decoder layer 2
    e = config["layers.2"]
    assert e["action"] == "add" and e["bias"] is None and e["steering_coefficient"] == 1.0
    base = _logits(model, ids, {})
    ref, got = _reference(model, ids, spec), _logits(model, ids, config)
    assert (ref - base).abs().max() > 1e-2  # the rule does something
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_pt_is_byte_deterministic(tmp_path):
    spec = _spec(tmp_path, SPECS["three features, one point, summed"])
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for o in outs:
        assert main(["export", str(spec), "--to", "lm-eval", "-o", str(o)]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_csv_row_read_back_equals_the_reference(tmp_path, demo):
    """A CSV names the SAE by SAELens release/id; lm-eval then adds coefficient * W_dec[i] of
    that SAE at `hookpoint`. Read back with the csv module and applied that way (the SAE's rows
    from steerc's loader, the same file), it equals the reference."""
    from steerc.compiler.build_checkpoint import load_base, load_saes
    from steerc.compiler.load import load_program

    model, ids = demo
    spec = _spec(tmp_path, 'amplify res2[143] by 20\n')
    program = load_program(spec)
    src = HubSource("org/saes", None, "0" * 40, "res2", release="demo-release", sae_id="blocks.2")
    named = dataclasses.replace(program, saes=tuple(dataclasses.replace(b, source=src) for b in program.saes))
    config, _, adapter = load_base(DEMO / "model")
    text = lmeval.csv_text(lmeval.plan_rows(named, config, adapter), named)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(lmeval.CSV_COLUMNS)
    (row,) = rows
    assert (row["loader"], row["action"], row["sparse_model"], row["sae_id"], row["hookpoint"]) == \
        ("sae_lens", "add", "demo-release", "blocks.2", "layers.2")
    sae = load_saes(program)["res2"]
    vec = sae.decoder_rows([int(row["feature_index"])])[0].float()
    got = _logits(model, ids, {row["hookpoint"]: {"steering_coefficient": float(row["steering_coefficient"]),
                                                  "steering_vector": vec}})
    torch.testing.assert_close(got, _reference(model, ids, spec), atol=1e-5, rtol=1e-5)
    # two features: rows replace each other at one hookpoint (lm-eval line 200) -> refused
    two = dataclasses.replace(named, interventions=named.interventions * 2)
    with pytest.raises(DiagnosticError) as e:
        lmeval.csv_text(lmeval.plan_rows(two, config, adapter), two)
    assert [d.code for d in e.value.diagnostics] == ["E454"]


REFUSED = {
    "clamp": ('steer res2[3] by 2\nclamp res2[4] to 3\n', "E450", 5, 1),
    "suppress a set": ('suppress features tagged "format:code" in res2\n', "E450", 4, 1),
    "scale": ('scale res2[4] by 0.5\n', "E450", 4, 1),
    "ablate": ('ablate res2[4] everywhere\n', "E450", 4, 1),
    "when": ('when res2[1221] > 3 {\n  amplify res2[143] by 100\n}\n', "E451", 5, 3),
    "on generated": ('steer res2[3] by 2 on generated\n', "E451", 4, 1),
    "enforce json": ('enforce json format\n', "E456", 4, 1),
    "nothing": ('', "E453", None, None),
}


@pytest.mark.parametrize("body,code,line,col", REFUSED.values(), ids=REFUSED.keys())
def test_what_lm_eval_cannot_express_is_refused_at_the_rule(tmp_path, capsys, body, code, line, col):
    spec, out = _spec(tmp_path, body), tmp_path / "steer.pt"
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    where = f"{spec}:{line}:{col}: " if line else ""
    assert f"{where}error[{code}]" in err and "hint:" in err, err
    assert "Traceback" not in err and not out.exists()


def test_a_hook_point_that_is_no_module_output_is_refused(tmp_path):
    """resid_pre L is the *input* of layer L: lm-eval only edits outputs (E452, with the
    equivalent point in the hint)."""
    from steerc.compiler.build_checkpoint import load_base
    from steerc.compiler.load import load_program

    program = load_program(_spec(tmp_path, 'steer res2[3] by 2\n'))
    moved = dataclasses.replace(program, interventions=tuple(
        dataclasses.replace(iv, points=("blocks.2.hook_resid_pre",)) for iv in program.interventions))
    config, _, adapter = load_base(DEMO / "model")
    with pytest.raises(DiagnosticError) as e:
        lmeval.plan_rows(moved, config, adapter)
    (d,) = e.value.diagnostics
    assert d.code == "E452" and d.span.line == 4 and "hook_resid_post" in d.hint


def test_csv_of_a_local_sae_and_a_bad_suffix(tmp_path, capsys):
    spec = _spec(tmp_path, 'steer res2[3] by 2\n')
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:4:1: error[E455]" in err and "-o steer.pt" in err
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(tmp_path / "s.txt")]) == 1
    assert "error[E457]" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.txt").exists()


def test_export_never_writes_over_an_input(tmp_path, capsys):
    spec = _spec(tmp_path, 'steer res2[3] by 2\n', name="s.pt")  # the spec itself as -o
    before = spec.read_bytes()
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(spec)]) == 1
    assert "error[E42" in capsys.readouterr().err and spec.read_bytes() == before


def test_with_lm_eval_itself(tmp_path, demo):
    """lm-eval's own `SteeredModel` (HFLM + hooks) reads the exported .pt and its logits equal
    the reference (skipped without `lm_eval[hf]`; tested with lm_eval 0.4.13)."""
    hf_steered = pytest.importorskip("lm_eval.models.hf_steered")
    model, ids = demo
    spec, out = _spec(tmp_path, SPECS["three features, one point, summed"]), tmp_path / "steer.pt"
    assert main(["export", str(spec), "--to", "lm-eval", "-o", str(out)]) == 0
    lm = hf_steered.SteeredModel(pretrained=str(DEMO / "model"), steer_path=str(out), device="cpu",
                                 batch_size=1, dtype="float32")
    assert list(lm.hook_to_steer) == ["layers.2"]
    with torch.no_grad():
        got = lm._model_call(ids)
    torch.testing.assert_close(got, _reference(model, ids, spec), atol=1e-5, rtol=1e-5)


def test_any_set_of_adds_is_exported_exactly(demo, tmp_path_factory):
    """Property: any multiset of steer rules on the demo SAE (features, signed values,
    repeats), exported as the .pt payload and applied the way lm-eval applies it, gives
    the reference logits."""
    from hypothesis import given, settings, strategies as st

    from steerc.compiler.build_checkpoint import directions_from, load_base, load_saes
    from steerc.compiler.ir import FeatureId, Intervention, Op
    from steerc.compiler.load import load_program
    from steerc.runtime.apply import apply

    model, ids = demo
    program = load_program(_spec(tmp_path_factory.mktemp("p"), 'steer res2[3] by 1\n'))
    saes = load_saes(program)
    config, _, adapter = load_base(DEMO / "model")
    (iv0,) = program.interventions
    rule = st.tuples(st.integers(0, 1535), st.floats(-8, 8, allow_nan=False).filter(lambda v: abs(v) > 1e-3))

    @settings(max_examples=15, deadline=None)
    @given(st.lists(rule, min_size=1, max_size=6))
    def check(rules):
        ivs = tuple(Intervention(Op.ADD, FeatureId("res2", i), v, iv0.points, span=iv0.span, origin="p")
                    for i, v in rules)
        prog = dataclasses.replace(program, interventions=ivs)
        payload = lmeval.pt_payload(lmeval.plan_rows(prog, config, adapter), directions_from(saes))
        with torch.no_grad(), apply(model, prog, saes):
            ref = model(ids).logits
        torch.testing.assert_close(_logits(model, ids, payload), ref, atol=1e-5, rtol=1e-5)

    check()
