"""Which declarations name the Hub, spec-relative model paths, and the SAELens registry."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerc.compiler.load import load
from steerc.diagnostics import DiagnosticError
from steerc.hub import HubRef, looks_like_hub_id, parse_ref

from .conftest import SCOPE_PATH, SCOPE_REPO

PART = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]{0,8}[A-Za-z0-9])?", fullmatch=True)


@given(PART, PART, st.one_of(st.none(), st.from_regex(r"[a-z0-9][a-z0-9/_]{0,12}[a-z0-9]", fullmatch=True)))
def test_hub_ids_round_trip(org, name, rev):
    ref = parse_ref(f"{org}/{name}" + (f"@{rev}" if rev else ""))
    assert ref == HubRef(f"{org}/{name}", rev)


@given(st.text(max_size=30))
def test_explicit_paths_are_never_hub_ids(text):
    for prefix in ("./", "../", "/", "~"):
        assert not looks_like_hub_id(prefix + text)


def codes(spec, **kw) -> list[tuple[str, int]]:
    with pytest.raises(DiagnosticError) as e:
        load(spec, **kw)
    return [(d.code, d.span.line if d.span else 0) for d in e.value.diagnostics if d.code.startswith("E")]


def test_folder_that_is_also_a_hub_id_is_ambiguous(offline_cache, tmp_path):
    (tmp_path / "org" / "tiny").mkdir(parents=True)
    spec = tmp_path / "s.steer"
    spec.write_text('model "org/tiny"\n')
    with pytest.raises(DiagnosticError) as e:
        load(spec)
    d = e.value.diagnostics[0]
    assert d.code == "E262" and d.span.line == 1 and 'model hub "org/tiny"' in d.hint and '"./org/tiny"' in d.hint
    spec.write_text('model "./org/tiny"\n')      # the folder (empty here: no config, still a folder)
    assert load(spec).program.model_source is None
    spec.write_text('model hub "org/tiny"\n')    # the Hub
    assert load(spec).program.model_source.repo == "org/tiny"


def test_model_path_is_relative_to_the_spec_not_the_cwd(offline_cache, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(offline_cache.model_dir, tmp_path / "specs" / "m")
    (tmp_path / "specs" / "s.steer").write_text('model "m"\n')
    monkeypatch.chdir(tmp_path)                  # no ./m here
    a = os.path.abspath(load("specs/s.steer").program.model)
    monkeypatch.chdir(tmp_path / "specs")
    b = os.path.abspath(load("s.steer").program.model)
    assert a == b == str(tmp_path / "specs" / "m")


def test_sae_by_hub_repo_and_folder_offline(offline_cache, tmp_path):
    spec = tmp_path / "s.steer"
    spec.write_text(f'model "org/tiny"\nsae r = hub "{SCOPE_REPO}" path "{SCOPE_PATH}"\nsteer r[1] by 1\n')
    b = load(spec).program.sae("r")
    assert b.hook == "blocks.1.hook_resid_post" and b.source.commit == offline_cache.sae_commit
    spec.write_text(f'model "org/tiny"\nsae r = hub "{SCOPE_REPO}" path "layer_1/width_16k/average_l0_9"\n')
    assert codes(spec) == [("E266", 2)]          # folder not in the repo: names the folders there


def test_bad_hub_ids_are_diagnostics(offline_cache, tmp_path):
    spec = tmp_path / "s.steer"
    spec.write_text('model hub "org/tiny@"\nsae r = hub "a--b/c"\n')
    assert codes(spec) == [("E263", 1), ("E263", 2)]


def test_saelens_name_without_sae_lens_says_what_to_do(offline_cache, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_sae_lens(name, *a, **k):
        if name.startswith("sae_lens"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sae_lens)
    spec = tmp_path / "s.steer"
    spec.write_text('model "org/tiny"\nsae r = saelens "gemma-scope-2b-pt-res-canonical" id "layer_1/width_16k/canonical"\n')
    with pytest.raises(DiagnosticError) as e:
        load(spec)
    d = e.value.diagnostics[0]
    assert d.code == "E264" and "steerc[saelens]" in d.hint and 'hub "org/repo" path' in d.hint


def test_saelens_release_resolves_through_the_registry(offline_cache, tmp_path, monkeypatch):
    """The registry lookup itself, with SAELens's directory faked (sae-lens is optional)."""
    from types import SimpleNamespace

    import steerc.hub.saelens as sl

    fake = {"gemma-scope-2b-pt-res-canonical": SimpleNamespace(
        repo_id=SCOPE_REPO, saes_map={"layer_1/width_16k/canonical": SCOPE_PATH})}
    monkeypatch.setattr(sl, "_directory", lambda: fake)
    spec = tmp_path / "s.steer"
    spec.write_text('model "org/tiny"\nsae r = saelens "gemma-scope-2b-pt-res-canonical" id '
                    '"layer_1/width_16k/canonical"\nsteer r[1] by 1\n')
    src = load(spec).program.sae("r").source
    assert (src.repo, src.folder, src.release, src.commit) == (
        SCOPE_REPO, SCOPE_PATH, "gemma-scope-2b-pt-res-canonical", offline_cache.sae_commit)
    spec.write_text('model "org/tiny"\nsae r = saelens "gemma-scope-2b-pt-res-canonicl" id "x"\n'
                    'sae q = saelens "gemma-scope-2b-pt-res-canonical" id "layer_1/width_16k/canonicl"\n')
    assert codes(spec) == [("E265", 2), ("E268", 3)]


def test_real_sae_lens_registry_when_installed():
    pytest.importorskip("sae_lens")
    from steerc.hub import saelens_location

    assert saelens_location("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical") == (
        "google/gemma-scope-2b-pt-res", "layer_12/width_16k/average_l0_82")
