"""The model class of a compiled steerc checkpoint that needs hook modules.

SELF-CONTAINED: imports transformers and its flat siblings `configuration_steerc.py` and
`modeling_steerc.py` (copied verbatim into the checkpoint). `SteercForCausalLM` is the base
family's CausalLM class (same weights, same forward, same generate) with the steering hook
modules installed; their buffers (`steerc.*`) load from `steering.safetensors`.
"""

import transformers
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from .configuration_steerc import BASE_MODEL_TYPE, SteercConfig
from .modeling_steerc import SteercHooks, install

_Base = getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[BASE_MODEL_TYPE])


class SteercForCausalLM(_Base):
    config_class = SteercConfig

    def __init__(self, config):
        super().__init__(config)
        self.steerc_handle = install(self, SteercHooks(config.steerc))
