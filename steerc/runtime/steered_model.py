"""The model class of a compiled steerc checkpoint that needs hook modules.

SELF-CONTAINED: imports transformers, the standard library and its flat siblings
`configuration_steerc.py` and `modeling_steerc.py` (copied verbatim into the checkpoint).
`SteercForCausalLM` is the base family's CausalLM class (same weights, same forward, same
generate) with the steering hook modules installed; their buffers (`steerc.*`) load from
`steering.safetensors`.

`enforce json` checkpoints carry `steerc_json_guard` in config.json and the guard in
`custom_generate/`, which transformers runs as `model.generate` (trust_remote_code=True).
transformers' `save_pretrained` does not copy that folder, so this class does: the files are
read when the model is loaded and written into every `save_pretrained` directory. A model
whose config names the guard but which runs without it (the folder was lost, or the model
was built with `from_config`) refuses to `generate()` instead of generating unguarded.
"""

import os

import transformers
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from .configuration_steerc import BASE_MODEL_TYPE, SteercConfig
from .modeling_steerc import SteercHooks, install

_Base = getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[BASE_MODEL_TYPE])
GUARD_KEY = "steerc_json_guard"   # config.json: this checkpoint's generate() is the JSON guard
GUARD_DIR = "custom_generate"
GUARD_FILES = ("generate.py", "requirements.txt", "guard.json")  # + the schema guard.json names
_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download", "proxies")


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


def _read_guard_files(where, hub_kwargs):
    """{name: bytes} of `where`'s custom_generate/ (local folder or Hub repo); {} when it has
    no guard.json (then nothing can be carried, and generate() refuses)."""
    import json

    def read(name):
        path = transformers.utils.cached_file(where, GUARD_DIR + "/" + name,
                                              _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if path is None:
            return None
        with open(path, "rb") as f:
            return f.read()

    files = {n: read(n) for n in GUARD_FILES}
    if any(v is None for v in files.values()):
        return {}
    schema = json.loads(files["guard.json"]).get("schema_file")
    if schema:
        files[schema] = read(schema)
        if files[schema] is None:
            return {}
    return files


class SteercForCausalLM(_Base):
    config_class = SteercConfig

    def __init__(self, config):
        super().__init__(config)
        self.steerc_handle = install(self, SteercHooks(config.steerc))
        self.steerc_guard_files = {}  # custom_generate/ as loaded: written by save_pretrained

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if getattr(model.config, GUARD_KEY, None):
            hub = {k: kwargs[k] for k in _HUB_KWARGS if kwargs.get(k) is not None}
            model.steerc_guard_files = _read_guard_files(pretrained_model_name_or_path, hub)
        return model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' save_pretrained, plus `custom_generate/` when the model carries the
        JSON guard (transformers copies the modeling code, never that folder)."""
        push = kwargs.pop("push_to_hub", False)
        hub_args = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "private", "create_pr",
                                               "revision", "commit_description") if k in kwargs}
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.steerc_guard_files and kwargs.get("is_main_process", True):
            d = os.path.join(save_directory, GUARD_DIR)
            os.makedirs(d, exist_ok=True)
            for name, data in sorted(self.steerc_guard_files.items()):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
        if push:
            # transformers would upload before the guard files exist; push_to_hub saves into
            # a fresh folder through this method and uploads all of it
            repo_id = hub_args.pop("repo_id", str(save_directory).rstrip("/").split("/")[-1])
            self.push_to_hub(repo_id, token=kwargs.get("token"), **hub_args)

    def generate(self, *args, **kwargs):
        # Reached only when custom_generate/ was not loaded: transformers replaces
        # `model.generate` on the instance when it is, and the guard calls
        # GenerationMixin.generate itself.
        if getattr(self.config, GUARD_KEY, None):
            raise RuntimeError(
                f"steerc: this checkpoint's generate() is a JSON guard ({GUARD_DIR}/generate.py, "
                "`enforce json`), which was not loaded, so it refuses to generate unguarded. Load "
                "a copy that has the custom_generate/ folder with from_pretrained(..., "
                "trust_remote_code=True), or save it again from such a model.")
        return super().generate(*args, **kwargs)
