"""Hooks backend (placeholder until the runtime's modeling_steerc lands)."""


class HooksBackend:
    name = "hooks"

    def emit(self, plan, program, config, raw_config, adapter, base, saes, out, progress=False):
        raise NotImplementedError("hooks target")
