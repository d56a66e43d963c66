"""SAELens release + SAE id -> (Hub repo, folder), through SAELens' own pretrained-SAE registry.

    repo, folder = saelens_location("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")
    # ("google/gemma-scope-2b-pt-res", "layer_12/width_16k/average_l0_82")

Needs the optional `sae-lens` package (`pip install 'steerc[saelens]'`); steerc reads only its
registry (`pretrained_saes.yaml`), never its loaders. Without it, `HubError` E264 says what to
install or how to name the repo folder instead.
"""

from __future__ import annotations

from steerc.diagnostics import did_you_mean
from steerc.hub.fetch import HubError

INSTALL_HINT = ("install it with `pip install 'steerc[saelens]'`, or name the SAE by its Hub repo "
                'and folder: sae ALIAS = hub "org/repo" path "folder/in/repo"')


def _directory() -> dict:
    try:
        from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    except ImportError:
        raise HubError("E264", "naming an SAE by its SAELens release needs the `sae-lens` package, "
                       "which is not installed", INSTALL_HINT) from None
    return get_pretrained_saes_directory()


def saelens_location(release: str, sae_id: str) -> tuple[str, str]:
    """(repo id, folder in the repo) of a SAELens release's SAE."""
    directory = _directory()
    entry = directory.get(release)
    if entry is None:
        hint = did_you_mean(release, list(directory))
        raise HubError("E265", f"SAELens knows no release '{release}'",
                       hint or "list the releases with `sae_lens.loading.pretrained_saes_directory`")
    folder = entry.saes_map.get(sae_id)
    if folder is None:
        ids = list(entry.saes_map)
        hint = did_you_mean(sae_id, ids) or f"its SAE ids include {', '.join(ids[:5])}"
        raise HubError("E268", f"SAELens release '{release}' has no SAE id '{sae_id}'", hint)
    return entry.repo_id, str(folder)
