"""The shipped demo artefacts (demo/): model, SAE and catalogue load offline and match the
figures recorded when they were trained. Never retrains; a few seconds on one core."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
import torch

from scripts.train_demo import activations, data

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
MODEL = DEMO / "model"
SAE_DIR = DEMO / "saes" / "blocks.2.hook_resid_post"
BUDGET = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def lm():
    return activations.load_demo(MODEL)


@pytest.fixture(scope="module")
def summary():
    return json.loads((MODEL / "training_summary.json").read_text())


@pytest.fixture(scope="module")
def sae_summary():
    return json.loads((DEMO / "sae_summary.json").read_text())


@pytest.fixture(scope="module")
def sae():
    from steerc.saes.load import load_sae
    return load_sae(SAE_DIR)


@pytest.fixture(scope="module")
def catalogue():
    return json.loads((DEMO / "catalogue.json").read_text())


@pytest.fixture(scope="module")
def heldout_acts(lm, sae):
    model, tok = lm
    t = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec,
         "threshold": sae.threshold}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads stall each other on the loaded 2-core machine
    try:
        return activations.heldout_activations(model, tok, 2, t, DEMO / "heldout")
    finally:
        torch.set_num_threads(threads)


def test_size_budget():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total <= BUDGET, f"demo/ is {total / 2**20:.1f} MiB"


def test_model_loads_offline_and_is_the_recorded_architecture(lm, summary):
    model, tok = lm
    assert model.config.model_type == "llama"
    assert sum(p.numel() for p in model.parameters()) == summary["params"]
    assert tok.bos_token_id is not None and tok.eos_token_id is not None
    assert tok("x").input_ids[0] == tok.bos_token_id  # BOS prepended, as in training
    assert model.generation_config.eos_token_id == tok.eos_token_id


@pytest.mark.parametrize("fmt", data.FORMATS)
def test_greedy_generation_reproduces_the_recorded_sample(lm, summary, fmt):
    model, tok = lm
    rec = summary["samples"][fmt]
    ids = tok(rec["prompt"], return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=24, do_sample=False)
    text = tok.decode(out[0, 1:], skip_special_tokens=True)
    assert text.startswith(rec["prompt"])
    assert len(text) > len(rec["prompt"]) + 10
    assert rec["greedy"].startswith(text) or text.startswith(rec["greedy"])


@torch.no_grad()
@pytest.mark.parametrize("fmt", data.FORMATS)
def test_heldout_loss_per_format(lm, summary, fmt):
    model, tok = lm
    docs = data.read_heldout(DEMO / "heldout" / f"{fmt}.txt")
    ids = tok("\n".join(docs)[:6000], return_tensors="pt").input_ids[:, :128]
    loss = model(input_ids=ids, labels=ids).loss.item()
    assert loss < math.log(len(tok)) - 2.0  # far below a uniform guess
    assert loss < summary["final_heldout_loss_per_format"][fmt] + 1.0


def test_resid_post_hook_is_layer_output(lm):
    model, tok = lm
    ids = tok("def f(x):\n    return x", return_tensors="pt").input_ids
    got = activations.resid_post(model, ids, 2)
    hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(got, hs[3])


def test_sae_config_and_shapes(sae, lm):
    model, _ = lm
    assert sae.cfg.architecture == "jumprelu"
    assert sae.hook_name == "blocks.2.hook_resid_post"
    assert sae.d_in == model.config.hidden_size
    assert sae.d_sae >= 8 * sae.d_in
    cfg = json.loads((SAE_DIR / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"] >= "6"


def test_sae_variance_explained_and_sparsity(sae, sae_summary, heldout_acts, lm):
    model, tok = lm
    x = []
    for fmt in data.FORMATS:
        ids = tok(data.read_heldout(DEMO / "heldout" / f"{fmt}.txt")[0][:3000],
                  return_tensors="pt").input_ids[:, :128]
        x.append(activations.resid_post(model, ids, 2)[0, 1:])
    x = torch.cat(x)
    f = sae.encode(x)
    ve = 1 - ((sae.decode(f) - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert ve >= sae_summary["heldout"]["variance_explained"] - 0.08
    l0 = (f > 0).sum(1).float().mean().item()
    assert 2 <= l0 <= 4 * sae_summary["k"]
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    for fmt in data.FORMATS:
        fired |= (heldout_acts[fmt]["acts"] > 0).flatten(0, 1).any(0)
    assert 1 - fired.float().mean().item() < 0.10


def test_catalogue_validates(catalogue, sae):
    schema = json.loads((ROOT / "specs" / "schemas" / "catalogue.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(catalogue)
    from steerc.catalogue.validate import validate_catalogue
    assert validate_catalogue(catalogue) == []
    (s,) = catalogue["saes"]
    assert s == {"id": "res2", "hook": sae.hook_name, "d_sae": sae.d_sae,
                 "sha256": sae.sha256(), "model": "./demo/model"}  # as scripts/train_demo/catalogue.sh names it
    assert [f["index"] for f in catalogue["features"]] == list(range(sae.d_sae))
    labels = [" ".join(f["label"].split()).casefold() for f in catalogue["features"]]
    assert len(set(labels)) == len(labels)


def test_catalogue_is_calibrates_output(catalogue):
    """Written by `steerc catalogue calibrate` (scripts/train_demo/catalogue.sh): every
    statistic calibrate writes, self-consistent, and labels without ASCII double quotes."""
    for f in catalogue["features"]:
        assert '"' not in f["label"] and all('"' not in a for a in f["aliases"])
        assert {"mean_active", "quantiles", "promotes", "suppresses"} <= set(f)
        assert "calibration tokens" in f["description"]
        if f["top_contexts"]:
            acts = [c["activation"] for c in f["top_contexts"]]
            assert acts == sorted(acts, reverse=True)
            assert acts[0] == pytest.approx(f["max_activation"], abs=1e-4)
            q = f["quantiles"]
            assert q["p50"] <= q["p90"] <= q["p99"] <= f["max_activation"] + 1e-9
            assert "«" in f["top_contexts"][0]["text"]


def test_catalogue_tags_every_calibration_corpus(catalogue):
    """Format tags from the three held-out formats, and topic / entity tags from every
    labelled corpus catalogue.sh passes (each gives at least one feature)."""
    script = (ROOT / "scripts" / "train_demo" / "catalogue.sh").read_text()
    topics = script.split("for t in ")[1].split(";")[0].split()
    entities = script.split("for e in ")[1].split(";")[0].split()
    assert topics and entities
    tags = [t for f in catalogue["features"] for t in f["tags"]]
    for fmt in data.FORMATS:
        assert tags.count(f"format:{fmt}") >= 5
    for t in [f"topic:{x}" for x in topics] + [f"entity:{x}" for x in entities]:
        assert t in tags, t
    corpora = {p.stem for p in (DEMO / "calibration").glob("*.jsonl")}
    assert corpora == set(data.FORMATS) | {f"topic-{x}" for x in topics} | {f"entity-{x}" for x in entities}


def test_catalogue_search_finds_an_entity_by_its_word(catalogue):
    from steerc.catalogue import Catalogue

    cat = Catalogue.open(DEMO / "catalogue.json")
    hits = cat.search("queue", sae_id="res2", limit=20)
    assert any("entity:sqs" in h.tags for h in hits)
    assert cat.tagged("entity:sqs", sae_id="res2")


def test_sae_suppress_reads_back_as_zero(sae, sae_summary, heldout_acts, lm):
    """The demo SAE is trained with aligned encoder/decoder rows, so suppressing one feature
    (x - a_i d_i, error term kept) and re-encoding gives ~0 for it (issue #5: >= 90% lower)."""
    from scripts.train_demo.train_sae import suppress_readback

    model, tok = lm
    ids = tok(data.read_heldout(DEMO / "heldout" / "code.txt")[0][:3000],
              return_tensors="pt").input_ids[:, :128]
    x = activations.resid_post(model, ids, 2)[0, 1:]
    t = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "threshold": sae.threshold}
    got = suppress_readback(x, t)
    assert got["alignment_median"] >= 0.95
    assert got["share_drop_ge_90pct"] >= 0.95, got
    assert sae_summary["suppress_readback"]["share_drop_ge_90pct"] >= 0.95
