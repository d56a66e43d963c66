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


def test_bin_only_repo_is_refused_before_downloading(monkeypatch):
    """Online: the file listing shows only pickle weights, so nothing is downloaded (E601)."""
    from types import SimpleNamespace

    import huggingface_hub

    import steerc.hub.fetch as fetch
    from steerc.hub import HubError

    files = ["config.json", "pytorch_model.bin", "tokenizer.json"]
    monkeypatch.setattr(fetch, "offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo, revision=None: SimpleNamespace(
        siblings=[SimpleNamespace(rfilename=f) for f in files]))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(HubError) as e:
        fetch.fetch_model("org/old", None, weights=True)
    assert e.value.code == "E601" and "safe_serialization=True" in e.value.hint


def test_only_the_files_steerc_reads_are_requested(monkeypatch, tmp_path):
    """Online: the allow-list holds config, tokenizer, index and shards, nothing else."""
    from types import SimpleNamespace

    import huggingface_hub

    import steerc.hub.fetch as fetch

    files = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "model.safetensors.index.json", "tokenizer.json", "README.md", "pytorch_model.bin",
             "original/consolidated.00.pth", "onnx/model.onnx"]
    asked = {}
    monkeypatch.setattr(fetch, "offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo, revision=None: SimpleNamespace(
        siblings=[SimpleNamespace(rfilename=f) for f in files]))

    def snap(repo, revision=None, allow_patterns=None):
        asked["patterns"] = allow_patterns
        d = tmp_path / "snapshots" / ("a" * 40)
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snap)
    with pytest.raises(fetch.HubError, match="no config.json"):  # the fake snapshot is empty
        fetch.fetch_model("org/m", "main", weights=True)
    assert sorted(asked["patterns"]) == ["config.json", "model-00001-of-00002.safetensors",
                                         "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                         "tokenizer.json"]
    with pytest.raises(fetch.HubError, match="no config.json"):
        fetch.fetch_model("org/m", "main", weights=False)
    assert sorted(asked["patterns"]) == ["config.json", "tokenizer.json"]


def test_bin_only_repo_in_the_cache_keeps_the_local_refusal(offline_cache, tmp_path):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import DiskEnvironment
    from tests.hubcache import put_repo

    put_repo(offline_cache.cache, "org/binonly", {"config.json": offline_cache.model_dir / "config.json",
                                                  "pytorch_model.bin": b"not read"})
    spec = tmp_path / "s.steer"
    spec.write_text('model "org/binonly"\n')
    program = load(spec, env=DiskEnvironment(fetch_weights=True)).program
    with pytest.raises(DiagnosticError) as e:
        compile_program(program, tmp_path / "out")
    assert e.value.diagnostics[0].code == "E601" and not (tmp_path / "out").exists()
