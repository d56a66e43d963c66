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


def _inherit_checkpoint_conversions() -> None:
    """Give `steerc_<base>` the base family's checkpoint key conversions (transformers 5
    looks them up by class name or model_type, both ours here, and skips remote code):
    without them GPT-NeoX's `embed_out` or Qwen2-MoE's per-expert tensors would not load."""
    try:
        from transformers.conversion_mapping import (get_checkpoint_conversion_mapping,
                                                     register_checkpoint_conversion_mapping)
    except ImportError:  # transformers 4: no conversions
        return
    mapping = (get_checkpoint_conversion_mapping(_Base.__name__)
               or get_checkpoint_conversion_mapping(BASE_MODEL_TYPE))
    if mapping:
        register_checkpoint_conversion_mapping(SteercConfig.model_type, mapping, overwrite=True)


_inherit_checkpoint_conversions()


class SteercForCausalLM(_Base):
    config_class = SteercConfig

    def __init__(self, config):
        super().__init__(config)
        self.steerc_handle = install(self, SteercHooks(config.steerc))
