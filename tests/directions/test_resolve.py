"""Directions in specs: declarations, references from every rule kind, and the diagnostics
of each mistake at its span (on the shipped demo model: 4 layers, hidden size 192)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from steerc.api import check
from steerc.compiler.load import load_program
from steerc.compiler.ir import Op
from steerc.diagnostics import DiagnosticError

DEMO = Path(__file__).resolve().parents[2] / "demo" / "model"


@pytest.fixture()
def spec(tmp_path):
    rng = np.random.default_rng(0)
    save_file({"v": rng.standard_normal(192).astype(np.float32)}, str(tmp_path / "v.safetensors"))
    save_file({"v": rng.standard_normal(64).astype(np.float32)}, str(tmp_path / "small.safetensors"))
    (tmp_path / "cv.svec").write_text(json.dumps(
        {"directions": {str(n): rng.standard_normal(192).tolist() for n in (1, 2)}}))
    (tmp_path / "a.txt").write_text("def f(self):\n    return self.x\n")
    (tmp_path / "b.txt").write_text("The weather is nice.\n")

    def write(body: str) -> Path:
        p = tmp_path / "s.steer"
        p.write_text(f'model "{DEMO}"\n' + body)
        return p
    return write


def _codes(path) -> list[tuple[str, int, int]]:
    with pytest.raises(DiagnosticError) as e:
        load_program(path)
    return [(d.code, d.span.line, d.span.col) for d in e.value.diagnostics if d.code.startswith("E")]


def test_every_rule_takes_a_direction(spec):
    p = spec('direction v = file "v.safetensors" at layer 2\n'
             'direction cv = file "cv.svec"\n'
             'direction m = mean last "a.txt" - mean last "b.txt" at layers 1..2\n'
             "steer v by 2\nablate cv everywhere\nclamp v to 0.5\nscale m by 0.5 on generated\n"
             "suppress m on prompt\nwhen v > 0.2 { steer v by 1 }\nablate v at layers 0..1\n"
             "expect m down by at least 10%\n")
    prog = load_program(p)
    by = {(iv.origin, iv.feature.sae): iv for iv in prog.interventions}
    assert by[("steer v by 2", "v")].op is Op.ADD and by[("steer v by 2", "v")].points == ("blocks.2.hook_resid_post",)
    assert {k[1] for k in by if k[0] == "ablate cv everywhere"} == {"cv@1", "cv@2"}
    assert by[("suppress m on prompt", "m@1")].points == ("blocks.1.hook_resid_post",)
    assert by[("ablate v at layers 0..1", "v")].points == ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
    when = next(iv for iv in prog.interventions if iv.condition)
    assert when.condition.feature.direction and str(when.condition.feature) == "v"
    assert prog.expects[0].features and all(f.direction for f in prog.expects[0].features)
    kinds = {b.alias: b.direction.kind for b in prog.saes if b.direction}
    assert kinds == {"v": "file", "cv@1": "file", "cv@2": "file", "m@1": "mean", "m@2": "mean"}


def test_check_summary_and_lock(spec, tmp_path):
    p = spec('direction m = mean "a.txt" - mean "b.txt" at layer 1\nsuppress m\n')
    res = check(p, write_lock=True)
    assert "1 direction" in res.summary
    lock = json.loads(Path(res.lock_path).read_text())
    assert lock["saes"]["m"]["direction"]["kind"] == "mean"
    assert set(lock["prompt_files"]) == {"a.txt", "b.txt"}
    check(p, locked=True)
    (tmp_path / "b.txt").write_text("Another sentence.\n")  # the direction would change
    with pytest.raises(DiagnosticError) as e:
        check(p, locked=True)
    assert e.value.diagnostics[-1].code == "E222" and "b.txt" in e.value.diagnostics[-1].message


@pytest.mark.parametrize("body,want", [
    ('direction v = file "v.safetensors"\nsteer v by 1\n', ("E271", 2, 1)),          # where?
    ('direction m = mean "a.txt" - mean "b.txt"\nsteer m by 1\n', ("E271", 2, 1)),
    ('direction v = file "v.safetensors" at layer 2\nsteer w by 1\n', ("E272", 3, 7)),  # unknown
    ('sae res2 = "../sae"\ndirection res2 = file "v.safetensors" at layer 2\n', ("E270", 3, 11)),
    ('direction cv = file "cv.svec"\nwhen cv > 1 { steer cv by 1 }\n', ("E274", 3, 6)),
    ('direction cv = file "cv.svec"\nsteer cv by 1 at layers 0..1\n', ("E274", 3, 15)),
    ('direction v = file "v.safetensors" at layer 2\nclamp v to 5x max\n', ("E275", 3, 12)),
    ('direction v = file "v.safetensors" at layer 9\nsteer v by 1\n', ("E216", 2, 36)),
    ('direction v = file "small.safetensors" at layer 2\nsteer v by 1\n', ("E323", 2, 20)),
    ('direction m = mean "a.txt" - mean "a.txt" at layer 1\nsteer m by 1\n', ("E273", 2, 35)),
    ('direction m = mean "a.txt" - mean "nope.txt" at layer 1\nsteer m by 1\n', ("E207", 2, 35)),
    ('direction v = file "nope.safetensors" at layer 1\nsteer v by 1\n', ("E207", 2, 20)),
    ('direction cv = file "cv.svec" at layer 3\nsteer cv by 1\n', ("E323", 2, 31)),
    ('direction v = file "v.safetensors" at layer 1\ndirection v = file "v.safetensors" at layer 2\n',
     ("E208", 3, 11)),
    ('direction m = mean last "a.txt" - mean "b.txt" at layer 1\nsteer m by 1\n', ("E037", 2, 20)),
])
def test_mistakes_point_at_their_span(spec, body, want):
    assert want in _codes(spec(body))


def test_sae_alias_without_index_says_so(spec):
    p = spec('sae res2 = "../../demo/saes/blocks.2.hook_resid_post"\nsuppress res2\n')
    with pytest.raises(DiagnosticError) as e:
        load_program(p)
    d = next(d for d in e.value.diagnostics if d.code == "E272")
    assert "is an SAE" in d.message and "res2[123]" in d.hint
