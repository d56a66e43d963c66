"""`trace --feature` and the output score: a feature planted to write toward one token's
unembedding row promotes exactly that token, suppresses its opposite, and steers far better
than random features; the score is the documented formula, computed independently here."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from steerc.cli import main
from tests.tinymodels import HIDDEN, random_sae_dir, save_tiny, tiny_tokenizer

HOOK = "blocks.1.hook_resid_post"
D_SAE = 8
UP, DOWN = "Q", "Z"   # the planted feature 0 promotes UP, suppresses DOWN


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """model/ (untied head: row UP = 5u, row DOWN = -5u, BOS = 4u), sae/ whose feature 0 has
    decoder row u / g (g: the final norm's gain, so its lens is exactly W_U u), a catalogue,
    a spec and neutral text."""
    root = tmp_path_factory.mktemp("effect")
    model = save_tiny("llama", root / "model", tied=False)
    tok = tiny_tokenizer()
    up, down = tok.convert_tokens_to_ids(UP), tok.convert_tokens_to_ids(DOWN)
    u = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(11))
    u = u / u.norm()
    head = load_file(str(root / "model" / "model.safetensors"))
    W_U = head["lm_head.weight"].clone()
    W_U[up], W_U[down], W_U[tok.bos_token_id] = 5 * u, -5 * u, 4 * u   # a special: never shown
    head["lm_head.weight"] = W_U
    save_file(head, str(root / "model" / "model.safetensors"), metadata={"format": "pt"})
    random_sae_dir(HIDDEN, D_SAE, HOOK, root / "sae", "standard", seed=4)
    sae = load_file(str(root / "sae" / "sae_weights.safetensors"))
    sae["W_dec"][0] = u / model.model.norm.weight.detach()
    save_file(sae, str(root / "sae" / "sae_weights.safetensors"), metadata={"format": "pt"})
    feats = [{"sae": "res", "index": 0, "label": "planted", "aliases": [], "tags": [],
              "max_activation": 2.0, "density": 0.1, "description": ""}]
    (root / "catalogue.json").write_text(json.dumps({"version": 1, "saes": [
        {"id": "res", "hook": HOOK, "d_sae": D_SAE, "sha256": None, "model": "tiny"}], "features": feats}))
    (root / "s.steer").write_text('model "model"\nsae res = "sae"\ncatalogue "catalogue.json"\n')
    (root / "neutral.txt").write_text("the cat sat on the mat.\n\nA quiet day in the old town, "
                                      "with rain and a long walk home.\n")
    return root


def _trace(capsys, *argv):
    rc = main(["trace", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _features(capsys, root, *refs, extra=()):
    args = [a for r in refs for a in ("--feature", r)]
    rc, out, err = _trace(capsys, *args, "--spec", root / "s.steer", "--neutral", root / "neutral.txt",
                          "--format", "json", *extra)
    assert rc == 0, err
    return json.loads(out)


def test_planted_feature_promotes_its_token_through_the_unembedding(planted, capsys):
    """Fails if the sign is flipped, the embedding is read instead of the head, the final
    norm's gain is ignored (u / g would then not map to W_U u), or specials are shown."""
    doc = _features(capsys, planted, "res[0]")
    f = doc["features"][0]
    assert (f["sae"], f["index"], f["label"]) == ("res", 0, "planted")
    assert f["promotes"][0] == UP and f["suppresses"][0] == DOWN
    assert len(f["promotes"]) == len(f["suppresses"]) == 5
    assert "<s>" not in f["promotes"]


def test_planted_feature_outscores_random_features(planted, capsys):
    doc = _features(capsys, planted, *(f"res[{i}]" for i in range(D_SAE)))
    scores = {f["index"]: f["output_score"] for f in doc["features"]}
    # a random direction in a 100-token model still lifts its own top 5 (~0.45 here)
    assert scores[0] > 0.6 and scores[0] > max(scores[i] for i in range(1, D_SAE)) + 0.2
    assert all(f["kl"] > 0 for f in doc["features"])
    assert doc["output"] == {"neutral": str(planted / "neutral.txt"), "tokens": doc["output"]["tokens"],
                             "strength": 1.0, "n_tokens": 5}


def test_output_score_is_the_documented_formula(planted, capsys):
    """output_score = mean over every position of the neutral windows of P_steered(T) -
    P_base(T), steering x + alpha d at the hook with alpha |d| = strength x mean |x| there;
    kl = mean KL(base || steered). Computed here with a plain forward hook."""
    from transformers import AutoModelForCausalLM

    from steerc.verify.texts import windows

    strength, index = 0.7, 3
    doc = _features(capsys, planted, f"res[{index}]", extra=("--strength", strength))
    f = doc["features"][0]
    tok = tiny_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(planted / "model").eval()
    d = load_file(str(planted / "sae" / "sae_weights.safetensors"))["W_dec"][index]
    text = (planted / "neutral.txt").read_text()
    ids = windows([p for p in text.split("\n\n") if p.strip()], tok, 64, 8)
    assert doc["output"]["tokens"] == ids.numel()
    T = torch.tensor(tok.convert_tokens_to_ids(f["promotes"]))
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
        base = out.logits.log_softmax(-1)
        alpha = strength * float(out.hidden_states[2].norm(dim=-1).mean()) / float(d.norm())
        h = model.model.layers[1].register_forward_hook(lambda m, a, o: o + alpha * d)
        steered = model(ids).logits.log_softmax(-1)
        h.remove()
    want = (steered.exp()[..., T].sum(-1) - base.exp()[..., T].sum(-1)).mean()
    kl = (base.exp() * (base - steered)).sum(-1).mean()
    assert f["output_score"] == pytest.approx(float(want), abs=1e-5)
    assert f["kl"] == pytest.approx(float(kl), rel=1e-4)


def test_feature_text_and_determinism(planted, capsys):
    argv = ("--feature", "res[0]", "--feature", "res[2]", "--feature", "res[0]", "--spec",
            planted / "s.steer", "--neutral", planted / "neutral.txt")
    rc, out, err = _trace(capsys, *argv)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("output score and KL") and str(planted / "neutral.txt") in lines[0]
    assert lines[1] == "res[0]  planted" and lines[5] == "res[2]  -"   # duplicates dropped
    assert lines[2].split()[:2] == ["promotes", repr(UP)]
    assert lines[3].split()[:2] == ["suppresses", repr(DOWN)]
    assert lines[4].split()[:2] == ["output", "score"] and "KL" in lines[4]
    assert len(lines) == 9
    assert _trace(capsys, *argv)[1] == out


def test_feature_reference_errors_are_collected(planted, capsys):
    rc, _, err = _trace(capsys, "--feature", "res", "--feature", "ress[1]", "--feature", "res[99]",
                        "--spec", planted / "s.steer")
    assert rc == 1 and "Traceback" not in err
    assert err.count("E575") == 3
    assert "ALIAS[INDEX]" in err and "did you mean 'res'" in err and "0-7" in err


def test_usage_errors(planted, capsys):
    spec = ("--spec", planted / "s.steer")
    rc, _, err = _trace(capsys, "ab", "--rank", "output", *spec)
    assert rc == 1 and "E577" in err and "--rank" in err
    rc, _, err = _trace(capsys, "ab", "--strength", "2", *spec)
    assert rc == 1 and "E577" in err and "--strength" in err
    rc, _, err = _trace(capsys, "--feature", "res[0]", "--rank", "output", *spec)
    assert rc == 1 and "E577" in err
    rc, _, err = _trace(capsys, "ab", "--feature", "res[0]", *spec)
    assert rc == 1 and "E510" in err and "TEXT and --feature" in err
    rc, _, err = _trace(capsys, "--feature", "res[0]", "--neutral", planted / "nope.txt", *spec)
    assert rc == 1 and "E508" in err and "Traceback" not in err
    for bad in ("0", "-1", "nan", "inf", "x"):
        rc, _, err = _trace(capsys, "--feature", "res[0]", "--strength", bad, *spec)
        assert rc == 2 and "--strength" in err


def test_no_logit_lens_for_an_sae_of_another_width(tmp_path, capsys):
    """An SAE on attn.hook_z (n_heads x d_head = 16 wide, the stream is 32): E576."""
    save_tiny("llama", tmp_path / "model", head_dim=8)
    random_sae_dir(16, 4, "blocks.1.attn.hook_z", tmp_path / "sae", "standard")
    rc, _, err = _trace(capsys, "--feature", "z[1]", "--model", tmp_path / "model", "--sae",
                        f"z={tmp_path / 'sae'}")
    assert rc == 1 and "E576" in err and "hook_z" in err and "Traceback" not in err


def test_an_sae_of_another_model_is_refused_in_every_trace_mode(tmp_path, capsys):
    """A 16-wide SAE on the 32-wide residual stream: E309 before any encode (was an internal
    error inside the encoder for TEXT and --contrast)."""
    save_tiny("llama", tmp_path / "model")
    random_sae_dir(16, 4, HOOK, tmp_path / "sae", "standard")
    (tmp_path / "a.txt").write_text("abc\n")
    src = ("--model", tmp_path / "model", "--sae", f"x={tmp_path / 'sae'}")
    for mode in (("hello",), ("--contrast", tmp_path / "a.txt", tmp_path / "a.txt"), ("--feature", "x[1]")):
        rc, _, err = _trace(capsys, *mode, *src)
        assert rc == 1 and "E309" in err and "internal error" not in err, mode
