"""Config class of a compiled steerc checkpoint that needs hook modules.

SELF-CONTAINED: imports only transformers. Shipped flat inside the checkpoint; steerc
rewrites the one `BASE_MODEL_TYPE = ...` line at compile time, nothing else.

`SteercConfig` is the base family's config class (e.g. LlamaConfig) under its own
`model_type` (`steerc_<base>`): transformers does not know that type, so loading the
checkpoint needs `trust_remote_code=True` and fails otherwise, never silently dropping the
steering. `config.steerc` holds the hook spec (see modeling_steerc.py).
"""

from transformers.models.auto.configuration_auto import CONFIG_MAPPING

BASE_MODEL_TYPE = "llama"


class SteercConfig(CONFIG_MAPPING[BASE_MODEL_TYPE]):
    model_type = "steerc_" + BASE_MODEL_TYPE
