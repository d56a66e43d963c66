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


def test_contrast_ranks_features_by_the_difference_of_their_means(tiny, capsys, tmp_path):
    """`--contrast A B`: each feature's mean over A's content tokens minus B's, checked
    against a direct encode; the order is by |A - B|, labels from the catalogue."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steerc.saes import load_sae
    from steerc.verify.capture import content_mask
    from steerc.verify.texts import windows

    a, b = ["the cat sat", "a dog ran far"], ['{"key": 1}', "[1, 2, 3]"]
    (tmp_path / "a.txt").write_text("\n".join(a) + "\n")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"text": x}) + "\n" for x in b))
    rc, out, err = _trace(capsys, "--contrast", tmp_path / "a.txt", tmp_path / "b.jsonl", "--spec",
                          tiny / "suppress.steer", "--top", 16, "--format", "json", "--rank", "activation")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["rank"] == "activation" and doc["output"] is None
    assert all(f["output_score"] is None and len(f["promotes"]) == 5 for f in doc["features"])
    tok = AutoTokenizer.from_pretrained(tiny / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny / "model").eval()
    sae = load_sae(tiny / "sae")

    def means(texts):
        w = windows(texts, tok, 128, 32)
        with torch.no_grad():
            acts = sae.encode(model(w, output_hidden_states=True).hidden_states[2])
        return acts[content_mask(w, tok)].mean(0)

    want = means(a) - means(b)
    got = {f["index"]: f["diff"] for f in doc["features"]}
    assert len(got) == 16 and all(abs(got[i] - float(want[i])) < 1e-4 for i in got)
    diffs = [abs(f["diff"]) for f in doc["features"]]
    assert diffs == sorted(diffs, reverse=True)
    assert doc["features"][0]["label"] == (LABELS_OF(doc["features"][0]["index"]))
    rc, out, _ = _trace(capsys, "--contrast", tmp_path / "a.txt", tmp_path / "b.jsonl", "--spec",
                        tiny / "suppress.steer", "--top", 3, "--rank", "activation")
    # title, header, then per feature its figures and its promoted / suppressed tokens
    assert rc == 0 and "mean A" in out and len(out.strip().splitlines()) == 2 + 2 * 3


def LABELS_OF(i):
    from tests.verify.conftest import LABELS

    return LABELS[i] if i < len(LABELS) else None


def test_contrast_usage_errors(tiny, capsys, tmp_path):
    rc, _, err = _trace(capsys, "ab", "--contrast", "x", "y", "--spec", tiny / "suppress.steer")
    assert rc == 1 and "E510" in err
    rc, _, err = _trace(capsys, "--contrast", tmp_path / "nope.txt", tmp_path / "nope.txt", "--spec",
                        tiny / "suppress.steer")
    assert rc == 1 and "E553" in err and "Traceback" not in err
    (tmp_path / "empty.txt").write_text("\n\n")
    rc, _, err = _trace(capsys, "--contrast", tmp_path / "empty.txt", tmp_path / "empty.txt", "--spec",
                        tiny / "suppress.steer")
    assert rc == 1 and "E553" in err and "holds no prompts" in err


def test_cli_constants_match_the_library():
    """The CLI keeps --rank's choices literal (no torch import at startup): they must agree."""
    from steerc.commands import trace as cli
    from steerc.verify import trace as lib

    assert (cli.RANKS, cli.POOL) == (lib.RANKS, lib.POOL)


def _contrast_files(tmp_path):
    (tmp_path / "a.txt").write_text("the cat sat\na dog ran far\n")
    (tmp_path / "b.txt").write_text('{"key": 1}\n[1, 2, 3]\n')
    return tmp_path / "a.txt", tmp_path / "b.txt"


def test_contrast_rank_both_annotates_the_activation_order(tiny, capsys, tmp_path):
    """Default `--rank both`: the same features in the same order as `activation`, each with
    promotes / suppresses (the lens of its decoder row) and its output score and KL."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steerc.arch.logitlens import Lens
    from steerc.saes import load_sae

    a, b = _contrast_files(tmp_path)
    common = ("--contrast", a, b, "--spec", tiny / "suppress.steer", "--top", 4, "--format", "json")
    rc, out, err = _trace(capsys, *common, "--rank", "activation")
    assert rc == 0, err
    act = json.loads(out)
    rc, out, err = _trace(capsys, *common, "--neutral", tiny / "neutral.txt")
    assert rc == 0, err
    both = json.loads(out)
    assert both["rank"] == "both" and both["output"]["neutral"] == str(tiny / "neutral.txt")
    assert [f["index"] for f in both["features"]] == [f["index"] for f in act["features"]]
    assert all(isinstance(f["output_score"], float) and f["kl"] > 0 for f in both["features"])
    # promotes = the top lens tokens of the decoder row, specials skipped
    tok = AutoTokenizer.from_pretrained(tiny / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny / "model").eval()
    sae = load_sae(tiny / "sae")
    f = both["features"][0]
    logits = Lens.of(model).logits(sae.decoder_rows([f["index"]]))[0]
    logits[tok.all_special_ids] = float("nan")
    order = logits.nan_to_num(float("-inf")).argsort(descending=True)[:5].tolist()
    assert f["promotes"] == [tok.decode([t]) for t in order]


def test_contrast_rank_output_reorders_a_wider_pool(tiny, capsys, tmp_path):
    a, b = _contrast_files(tmp_path)
    common = ("--contrast", a, b, "--spec", tiny / "suppress.steer", "--neutral", tiny / "neutral.txt")
    rc, out, err = _trace(capsys, *common, "--top", 3, "--rank", "output", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    scores = [f["output_score"] for f in doc["features"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    rc, out, _ = _trace(capsys, *common, "--top", 12, "--format", "json")  # the 4 x 3 pool, scored
    pool = json.loads(out)["features"]
    assert max(f["output_score"] for f in pool) == scores[0]
    best = sorted(pool, key=lambda f: -f["output_score"])[:3]
    assert [f["index"] for f in doc["features"]] == [f["index"] for f in best]
    rc, out, _ = _trace(capsys, *common, "--top", 3, "--rank", "output")
    lines = out.splitlines()
    assert rc == 0 and "highest output score first" in lines[0] and "output score and KL" in lines[1]
    assert len(lines) == 3 + 2 * 3 and lines[4].lstrip().startswith("promotes ")
