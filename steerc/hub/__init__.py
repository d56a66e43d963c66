"""Models and SAEs named by Hub id or SAELens release: parsing, fetching, the cache.

The only place that talks to the Hugging Face Hub. `steerc.compiler.locate` calls it when a
spec's `model` or `sae` names a Hub source; nothing else imports huggingface_hub for that.
"""

from steerc.hub.fetch import (HubError, Snapshot, cache_dir, fetch_folder, fetch_model, offline)
from steerc.hub.ids import HubRef, is_explicit_path, looks_like_hub_id, parse_ref
from steerc.hub.saelens import saelens_location

__all__ = ["HubError", "HubRef", "Snapshot", "cache_dir", "fetch_folder", "fetch_model", "is_explicit_path",
           "looks_like_hub_id", "offline", "parse_ref", "saelens_location"]
