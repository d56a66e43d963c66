"""Fetch what steerc reads from a Hugging Face Hub repo into the Hub cache, and find it there.

    snap = fetch_model("google/gemma-2-2b", None, weights=False, what="model")   # config + tokenizer
    snap = fetch_folder("google/gemma-scope-2b-pt-res", "main", "layer_12/width_16k/average_l0_82")
    snap.path, snap.commit                                                       # snapshots/<commit>

Everything goes through `huggingface_hub.snapshot_download`, so the cache is the one every
Hugging Face library shares (`HF_HOME`, `HF_HUB_CACHE`), `HF_HUB_OFFLINE=1` reads only the
cache, and a token comes from `HF_TOKEN` or `hf auth login`. Only the files steerc needs are
fetched: a model's `config.json`, `generation_config.json` and tokenizer files (what `check`
reads), plus its safetensors shards and index (what `compile`, `trace` and `verify` read);
an SAE's folder inside its repo. A repo with only `.bin` (pickle) weights is refused before
anything is downloaded (E601, as for a local folder).

Failures are `HubError`s (code, message, hint) for the caller to place at the spec line.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

SMALL_MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
                     "added_tokens.json", "chat_template.jinja", "chat_template.json")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
# what `hf download` needs to fetch the same files (root-level json covers config, index,
# generation config and tokenizer json files)
HF_INCLUDE_MODEL = ('"*.json"', '"*.safetensors"', '"tokenizer.model"', '"merges.txt"', '"vocab.txt"',
                    '"chat_template.jinja"')


@dataclass(frozen=True)
class Snapshot:
    """A repo as it sits in the Hub cache: `path` is `.../snapshots/<commit>` (or the folder
    inside it for an SAE), `commit` the resolved 40-hex sha."""

    repo: str
    revision: str | None
    commit: str
    path: str


class HubError(Exception):
    """A Hub problem as a diagnostic: `code` (E260-E279, E601), message, hint."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it."""
    from huggingface_hub import constants

    check = getattr(constants, "is_offline_mode", None)
    return bool(check()) if callable(check) else bool(constants.HF_HUB_OFFLINE)


def _rev(revision: str | None) -> str:
    return f" --revision {revision}" if revision else ""


def model_download_command(repo: str, revision: str | None) -> str:
    """The `hf download` command line that fetches what steerc needs of a model."""
    return f"hf download {repo}{_rev(revision)} --include {' '.join(HF_INCLUDE_MODEL)}"


def folder_download_command(repo: str, revision: str | None, folder: str | None) -> str:
    """The `hf download` command line that fetches one folder of a repo (all of it if None)."""
    inc = f' --include "{folder}/*"' if folder else ""
    return f"hf download {repo}{_rev(revision)}{inc}"


@contextlib.contextmanager
def _progress(show: bool):
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not show and not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not show and not was_disabled:
            enable_progress_bars()


def _snapshot(repo: str, revision: str | None, patterns: list[str], what: str, command: str,
              progress: bool) -> Snapshot:
    """snapshot_download with every huggingface_hub failure turned into a HubError."""
    from huggingface_hub import errors, snapshot_download

    ref = repo + (f"@{revision}" if revision else "")
    try:
        with _progress(progress):
            path = snapshot_download(repo, revision=revision, allow_patterns=patterns)
    except errors.GatedRepoError:
        raise HubError("E261", f"{what} '{ref}' is gated: the Hub refused access",
                       "accept its licence on the Hub, then set HF_TOKEN (or run `hf auth login`)") from None
    except errors.RepositoryNotFoundError:
        raise HubError("E261", f"{what} '{ref}': no such repo on the Hub (or it is private)",
                       "check the id; for a private repo set HF_TOKEN (or run `hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise HubError("E261", f"{what} '{ref}': revision '{revision}' not found in the repo",
                       "name an existing branch, tag or commit sha after '@'") from None
    except errors.LocalEntryNotFoundError as e:
        why = "HF_HUB_OFFLINE is set" if offline() else "the Hub could not be reached"
        raise HubError("E260", f"{what} '{ref}' is not in the Hugging Face cache and {why}",
                       f"download it first: {command}") from e
    except (errors.HfHubHTTPError, OSError) as e:
        raise HubError("E267", f"{what} '{ref}': download failed ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''})",
                       f"retry, or download it with: {command}") from None
    return Snapshot(repo, revision, Path(path).name, path)


def _root_files(repo: str, revision: str | None) -> list[str] | None:
    """The repo's top-level file names (None offline or when the Hub cannot be asked)."""
    if offline():
        return None
    from huggingface_hub import HfApi, errors

    try:
        info = HfApi().model_info(repo, revision=revision)
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.GatedRepoError):
        return None  # snapshot_download reports these with the right code
    except Exception:  # no network: snapshot_download falls back to the cache
        return None
    return [s.rfilename for s in (info.siblings or []) if "/" not in s.rfilename]


def fetch_model(repo: str, revision: str | None, *, weights: bool, what: str = "model",
                command: str | None = None, progress: bool = True) -> Snapshot:
    """A model's snapshot holding config and tokenizer files (and with `weights`, its
    safetensors shards and index). `command`: the fix to show when it must be downloaded."""
    command = command or model_download_command(repo, revision)
    names = _root_files(repo, revision)
    if names is None:  # offline: take what the cache has, and check it below
        patterns = list(SMALL_MODEL_FILES) + ([SINGLE, INDEX, "model-*.safetensors"] if weights else [])
    else:
        st = [n for n in names if n.endswith(".safetensors")]
        if not st and any(fnmatch.fnmatch(n, p) for n in names for p in PICKLE_WEIGHTS):
            raise HubError("E601", f"{what} '{repo}' has only pickle (.bin) weights on the Hub; steerc "
                           "reads safetensors only", "convert it with `save_pretrained(..., "
                           "safe_serialization=True)` and name the converted folder, or pick a "
                           "revision or repo that has safetensors")
        patterns = [n for n in names if n in SMALL_MODEL_FILES]
        if weights:
            patterns += [n for n in names if n == INDEX] + st
    snap = _snapshot(repo, revision, patterns, what, command, progress)
    _check_model_files(snap, weights, what, command)
    return snap


def _check_model_files(snap: Snapshot, weights: bool, what: str, command: str) -> None:
    root = Path(snap.path)
    ref = snap.repo + (f"@{snap.revision}" if snap.revision else "")
    if not (root / "config.json").is_file():
        raise HubError("E260", f"{what} '{ref}' (commit {snap.commit[:12]}) has no config.json in the "
                       "Hugging Face cache", f"download it: {command}")
    if not weights:
        return
    shards = [SINGLE]
    if (root / INDEX).is_file():
        from steerc.checkpoint.layout import read_index
        try:
            shards = sorted(set(read_index(root / INDEX)["weight_map"].values()))
        except Exception:  # a broken index is reported (E603) where the weights are read
            return
    elif not (root / SINGLE).is_file() and any(root.glob(p) for p in PICKLE_WEIGHTS):
        return  # `.bin`-only in the cache: open_checkpoint refuses it (E601) with its hint
    missing = [s for s in shards if not (root / s).is_file()]
    if missing:
        raise HubError("E260", f"{what} '{ref}' (commit {snap.commit[:12]}) is only partly in the Hugging "
                       f"Face cache: missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
                       f"download it: {command}")


def fetch_folder(repo: str, revision: str | None, folder: str | None, *, what: str = "SAE",
                 command: str | None = None, progress: bool = True) -> Snapshot:
    """The snapshot of `repo` holding `folder` (a folder or a file inside the repo; the whole
    repo when None); `Snapshot.path` is that folder or file in the cache."""
    folder = folder.strip("/") if folder else None
    command = command or folder_download_command(repo, revision, folder)
    patterns = [folder, f"{folder}/*"] if folder else ["*"]
    snap = _snapshot(repo, revision, patterns, what, command, progress)
    target = Path(snap.path, folder) if folder else Path(snap.path)
    if not target.exists():
        ref = repo + (f"@{revision}" if revision else "")
        near = _folders(Path(snap.path), folder)
        hint = (f"folders there: {', '.join(near)}" if near else f"download it: {command}")
        raise HubError("E266", f"{what} '{ref}' (commit {snap.commit[:12]}) has no '{folder}'"
                       + ("" if offline() else " in the repo"), hint)
    return Snapshot(repo, revision, snap.commit, str(target))


def _folders(root: Path, folder: str | None) -> list[str]:
    """Up to 5 existing folders next to where `folder` was expected (for a hint)."""
    parent = root
    for part in (folder or "").split("/")[:-1]:
        if not (parent / part).is_dir():
            break
        parent = parent / part
    try:
        names = sorted(p.relative_to(root).as_posix() for p in parent.iterdir() if p.is_dir())
    except OSError:
        return []
    return names[:5]


def cache_dir() -> str:
    """The Hub cache folder huggingface_hub uses now (HF_HUB_CACHE, else HF_HOME/hub)."""
    from huggingface_hub import constants

    return os.fspath(constants.HF_HUB_CACHE)
