"""`steerc fetch SPEC`: download the Hub models and SAEs a spec names into the Hugging Face cache."""

from __future__ import annotations

import argparse

from steerc.diagnostics import Collector, DiagnosticError
from steerc.report import add_format_argument, human_stream

NAME = "fetch"
HELP = "download the model and SAEs a spec names on the Hugging Face Hub (only the files steerc reads)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when everything the spec names is in the cache (local paths are left alone), else 1."""
    from steerc.compiler import ast
    from steerc.compiler.load import gather
    from steerc.compiler.locate import locate_model, locate_sae, model_is_hub

    col = Collector()
    _, statements = gather(args.spec, col)
    col.check()
    done, seen = [], set()
    for st in statements:
        try:
            if isinstance(st, ast.ModelDecl) and model_is_hub(st):
                loc = locate_model(st, weights=True, progress=not args.no_progress)
                done.append(f"model {loc.hub.repo}: commit {loc.hub.commit}")
            elif isinstance(st, ast.SaeDecl) and st.kind != "plain" and st.alias.value not in seen:
                seen.add(st.alias.value)
                loc = locate_sae(st, progress=not args.no_progress)
                done.append(f"SAE {st.alias.value} {loc.hub.uri()}: commit {loc.hub.commit}")
        except DiagnosticError as e:
            col.diagnostics.extend(e.diagnostics)
    col.check()
    out = human_stream(args)
    for line in done:
        print(line, file=out)
    print(f"ok: {len(done)} Hub source{'s' * (len(done) != 1)} in the cache" if done else
          "ok: the spec names nothing on the Hub", file=out)
    return 0
