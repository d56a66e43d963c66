"""The benchmark script runs end to end on a tiny catalogue and edits only its own section."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "catalogue_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("catalogue_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_smoke(tmp_path, capsys):
    bench = load_bench()
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Parser\n\nkeep me\n\n## Catalogue\n\nold figures\n\n## Emit\n\nkeep me too\n")
    assert bench.main(["--n", "1000", "--queries", "20", "--scan-queries", "2", "--write", str(md)]) == 0
    text = md.read_text()
    assert "old figures" not in text and "1,000 features" in text
    assert text.count("## Catalogue") == 1 and "keep me\n" in text and "keep me too" in text
    assert ".venv/bin/python bench/catalogue_bench.py --n 1000" in text


def test_synthetic_catalogue_is_valid():
    from steerc.catalogue import validate_catalogue

    bench = load_bench()
    assert validate_catalogue(bench.synth(2000, bench.word_list())) == []
