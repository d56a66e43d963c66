"""`steerc catalogue build|search|show|check` through steerc.cli.main."""

import gzip
import json

from steerc.cli import main


def test_build_search_show_check(doc, write_json, tmp_path, capsys):
    src = write_json(doc)
    out = tmp_path / "c.sqlite"
    assert main(["catalogue", "build", str(src), "-o", str(out), "--no-progress"]) == 0
    assert "res2: 5" in capsys.readouterr().out and out.is_file()

    assert main(["catalogue", "search", "email", "--catalogue", str(out), "--sae", "res2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["res2[3]", "res2[40]"]

    assert main(["catalogue", "search", "json", "-c", str(src), "--limit", "1", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["label"] == "json key"

    assert main(["catalogue", "show", "res2", "12", "-c", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("res2[12]  json key") and "max_activation: 3.2" in shown and "aliases: json keys" in shown

    assert main(["catalogue", "show", "res2", "E-Mail", "-c", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"] == 3

    assert main(["catalogue", "check", str(src)]) == 0
    assert "ok:" in capsys.readouterr().out

    assert main(["catalogue", "tags", "-c", str(out), "--sae", "res2"]) == 0
    assert capsys.readouterr().out.split() == ["2", "entity:contact", "2", "format:code", "1", "format:json",
                                               "1", "format:prose"]


def test_show_unknown_feature_suggests(doc, write_json, capsys):
    src = write_json(doc)
    assert main(["catalogue", "show", "res2", "jsn key", "-c", str(src)]) == 1
    err = capsys.readouterr().err
    assert "error[E127]" in err and "did you mean 'json key'?" in err
    assert main(["catalogue", "show", "res2", "999", "-c", str(src)]) == 1
    assert main(["catalogue", "show", "res7", "1", "-c", str(src)]) == 1
    assert "E126" in capsys.readouterr().err


def test_search_no_match(doc, write_json, capsys):
    assert main(["catalogue", "search", "zebra", "-c", str(write_json(doc))]) == 0
    assert "no feature matches" in capsys.readouterr().err


def test_bad_catalogue_is_a_diagnostic_not_a_traceback(doc, write_json, tmp_path, capsys):
    doc["features"][1]["max_activation"] = -1
    src = write_json(doc)
    assert main(["catalogue", "check", str(src)]) == 1
    err = capsys.readouterr().err
    assert f"error[E102]: {src}: $.features[1].max_activation: -1 is less than the minimum of 0" in err
    assert "Traceback" not in err
    assert main(["catalogue", "build", str(src), "-o", str(tmp_path / "x.sqlite")]) == 1
    assert not (tmp_path / "x.sqlite").exists()
    assert main(["catalogue", "search", "x", "-c", str(tmp_path / "missing.sqlite")]) == 1
    assert "E100" in capsys.readouterr().err


def test_build_from_neuronpedia(tmp_path, capsys):
    rows = [{"modelId": "gpt2-small", "layer": "6-res-jb", "index": str(i), "description": d, "typeName": "t", "id": "x"}
            for i, d in [(5, "python code"), (17, "email addresses")]]
    batch = tmp_path / "batch-0.jsonl.gz"
    batch.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    feats = tmp_path / "features.jsonl"
    feats.write_text(json.dumps({"modelId": "gpt2-small", "layer": "6-res-jb", "index": "17", "maxActApprox": 9.5}) + "\n")
    out = tmp_path / "np.sqlite"
    argv = ["catalogue", "build", str(batch), "--from", "neuronpedia", "--sae", "res6",
            "--hook", "blocks.6.hook_resid_pre", "--d-sae", "24576", "--features", str(feats), "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "res6: 2" in capsys.readouterr().out
    assert main(["catalogue", "show", "res6", "17", "-c", str(out)]) == 0
    assert "max_activation: 9.5" in capsys.readouterr().out
    as_json = tmp_path / "np.json"
    assert main(argv[:-3] + ["-o", str(as_json), "--no-progress"]) == 0
    assert json.loads(as_json.read_text())["saes"][0]["id"] == "res6"


def test_usage_errors(tmp_path, capsys):
    assert main(["catalogue"]) == 2
    assert main(["catalogue", "build", str(tmp_path / "e.jsonl"), "--from", "neuronpedia", "-o", str(tmp_path / "o.sqlite")]) == 1
    assert "needs --sae, --hook, --d-sae" in capsys.readouterr().err
