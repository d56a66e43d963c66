"""`steerc trace`: per-token features, labels from the catalogue, text and JSON output."""

from __future__ import annotations

import json

import torch

from steerc.cli import main


def _trace(capsys, *argv):
    rc = main(["trace", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_trace_json_matches_direct_encode(tiny, compiled, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steerc.saes import load_sae
    from tests.verify.conftest import LABELS

    rc, out, err = _trace(capsys, "hello world", "--spec", tiny / "suppress.steer", "--top", 3,
                          "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["saes"][0]["catalogue_id"] == "res"
    toks = doc["tokens"]
    tok = AutoTokenizer.from_pretrained(tiny / "model")
    ids = tok("hello world")["input_ids"]
    assert [t["token_id"] for t in toks] == ids
    # reference: layer 1 output (resid_post) encoded by the SAE, top 3 positive
    model = AutoModelForCausalLM.from_pretrained(tiny / "model").eval()
    with torch.no_grad():
        hs = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[2]
        acts = load_sae(tiny / "sae").encode(hs)[0]
    for t, row in zip(toks, acts):
        v, i = row.topk(3)
        want = [(int(j), float(a)) for a, j in zip(v, i) if a > 0]
        got = [(f["index"], f["activation"]) for f in t["features"]]
        assert [g[0] for g in got] == [w[0] for w in want]
        assert all(abs(g[1] - w[1]) < 1e-4 for g, w in zip(got, want))
        for f in t["features"]:
            assert f["label"] == (LABELS[f["index"]] if f["index"] < len(LABELS) else None)


def test_trace_text_table_with_explicit_sources(tiny, capsys):
    rc, out, _ = _trace(capsys, "ab", "--model", tiny / "model", "--sae", f"res={tiny / 'sae'}",
                        "--catalogue", tiny / "catalogue.json", "--top", 2)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].strip().startswith("0") and "res[" in out


def test_trace_usage_errors(tiny, capsys):
    rc, _, err = _trace(capsys, "ab")
    assert rc == 1 and "E510" in err
    rc, _, err = _trace(capsys, "ab", "--model", tiny / "nope", "--sae", tiny / "sae")
    assert rc == 1 and "E511" in err and "Traceback" not in err
