"""File -> Program: parse a spec and everything it `use`s, merge the declarations, resolve.

    program = load_program("specs/support.steer")
    loaded = load("specs/support.steer")      # program + warnings, for `steerc check`

Composition rules (docs/language.md): `use "base.steer"` paths are relative to the file
that contains them; the used file's statements take the place of the `use` line. A cycle is
an error naming every file on it; using the same file twice (directly or through another
file) is an error. `model` and `catalogue` may be declared once across all files; an SAE
alias may be declared twice only with the same path.
"""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from steerc.compiler import ast
from steerc.files.hashing import bytes_sha256, cached_by_files, file_sha256
from steerc.compiler.ir import Program
from steerc.compiler.locate import sae_key
from steerc.compiler.resolve.auto import auto_rules
from steerc.compiler.resolve import (CatalogueView, Declarations, Environment, SaeInfo, missing_file,
                                     resolve, spec_relative)
from steerc.diagnostics import Collector, Diagnostic, DiagnosticError, Span
from steerc.grammar.printer import format_direction


@dataclass(frozen=True)
class Loaded:
    """A resolved program, the warnings produced on the way, and the specs read."""

    program: Program
    diagnostics: tuple[Diagnostic, ...]
    specs: tuple[ast.Spec, ...]
    calibration: dict | None = None  # the lock's `calibration` entry `auto` rules took t from


def _display(path: str | os.PathLike) -> str:
    return os.path.normpath(str(path))


def _parse(path: str) -> ast.Spec:
    from steerc.grammar.parser import parse_file

    return parse_file(path)


# How deep `use` may chain (a file using a file using a file ...). Real specs use one or
# two levels; the limit keeps the depth-first walk far from Python's recursion limit.
MAX_USE_DEPTH = 64


@dataclass
class _Gather:
    col: Collector
    specs: list[ast.Spec]
    stack: list[tuple[str, str]]          # (realpath, display) of the files being read
    first_use: dict[str, Span | None]     # realpath -> where it was first used (None: root)

    def file(self, display: str, out: list[ast.Statement]) -> None:
        real = _realpath(display)
        self.stack.append((real, display))
        try:
            spec = _parse(display)
        except DiagnosticError as e:
            self.col.diagnostics.extend(e.diagnostics)
            self.stack.pop()
            return
        self.specs.append(spec)
        for st in spec.statements:
            if isinstance(st, ast.Use):
                self.use(st, out)
            else:
                out.append(st)
        self.stack.pop()

    def use(self, u: ast.Use, out: list[ast.Statement]) -> None:
        target = spec_relative(u.path.span, u.path.value)
        if not os.path.isfile(target):
            if os.path.lexists(target):  # a directory, FIFO or device: never read
                self.col.error("E207", f"used spec '{target}' is not a regular file", u.path.span)
            else:
                missing_file(self.col, u.path, "used spec", target)
            return
        if len(self.stack) >= MAX_USE_DEPTH:
            self.col.error("E030", f"`use` nested more than {MAX_USE_DEPTH} files deep", u.path.span,
                           "flatten the chain: let one base file `use` the others")
            return
        real = _realpath(target)
        on_stack = [r for r, _ in self.stack]
        if real in on_stack:
            cycle = [d for _, d in self.stack[on_stack.index(real):]] + [target]
            self.col.error("E209", "`use` cycle: " + " -> ".join(cycle), u.path.span,
                           "a spec cannot use itself, directly or through other files")
            return
        if real in self.first_use:
            first = self.first_use[real]
            where = f"first used at {first}" if first else "it is the spec being checked"
            self.col.error("E210", f"'{target}' is used twice", u.path.span,
                           f"{where}; each file is included once (move shared rules to one base file)")
            return
        self.first_use[real] = u.path.span
        self.file(target, out)


def gather(spec_path: str | os.PathLike, col: Collector) -> tuple[list[ast.Spec], list[ast.Statement]]:
    """Parse the root spec and its `use`s (depth first); return the specs and the statements
    in order, with each `use` replaced by the used file's statements."""
    root = _display(spec_path)
    if not os.path.lexists(root):
        col.error("E207", f"spec file not found: '{root}'")
        return [], []
    g = _Gather(col, [], [], {_realpath(root): None})
    out: list[ast.Statement] = []
    g.file(root, out)  # anything but a regular file is refused by the read (E019)
    return g.specs, out


def _realpath(path: str) -> str:
    """os.path.realpath, or `path` itself when it cannot be a path (a NUL from a "\u0000"
    escape: realpath raises ValueError; the missing file is reported where it is opened)."""
    try:
        return os.path.realpath(path)
    except ValueError:
        return path


def merge(spec_file: str, statements: list[ast.Statement], files: list[str],
          col: Collector) -> Declarations:
    """Split statements into declarations and body; E208 for conflicting declarations."""
    model = catalogue = None
    saes: dict[str, ast.SaeDecl] = {}
    directions: dict[str, ast.DirectionDecl] = {}
    body = []
    for st in statements:
        if isinstance(st, ast.ModelDecl):
            if model is not None:
                col.error("E208", "`model` is declared twice", st.span,
                          f"the first declaration is at {model.span}; a spec and its uses declare "
                          "one model")
            else:
                model = st
        elif isinstance(st, ast.CatalogueDecl):
            if catalogue is not None:
                col.error("E208", "`catalogue` is declared twice", st.span,
                          f"the first declaration is at {catalogue.span}")
            else:
                catalogue = st
        elif isinstance(st, ast.SaeDecl):
            prev = saes.get(st.alias.value)
            if prev is None:
                saes[st.alias.value] = st
                continue
            if sae_key(prev) != sae_key(st):
                col.error("E208", f"SAE alias '{st.alias.value}' is declared twice with different "
                          "paths", st.alias.span,
                          f"the first declaration is at {prev.span} ('{prev.path.value}'); "
                          "pick another alias for the second SAE")
        elif isinstance(st, ast.DirectionDecl):
            prev = directions.setdefault(st.name.value, st)
            if prev is not st and format_direction(prev) != format_direction(st):
                col.error("E208", f"direction '{st.name.value}' is declared twice, differently",
                          st.name.span, f"the first declaration is at {prev.span}; pick another "
                          "name for the second direction")
        else:
            body.append(st)
    return Declarations(spec_file, model, catalogue, tuple(saes.values()), tuple(body), tuple(files),
                        tuple(directions.values()))


def load(spec_path: str | os.PathLike, *, catalogue_override: str | None = None,
         env: Environment | None = None, strength=None,
         lock_path: str | os.PathLike | None = None) -> Loaded:
    """Parse, compose and resolve a spec. Raises DiagnosticError (with every diagnostic,
    warnings included) when anything is an error; otherwise returns the warnings too.

    A spec with `auto` strengths takes t from `strength` (resolve.auto.Strength) when given,
    else from the lock at `lock_path` (default `<spec>.lock`), which is read only then."""
    col = Collector()
    specs, statements = gather(spec_path, col)
    col.check()  # syntax errors or broken `use`s: resolving half a program only adds noise
    files = [s.file for s in specs]
    decls = merge(files[0], statements, files, col)
    entry = None
    if strength is None and next(auto_rules(decls.body), None) is not None:
        from steerc.compiler.lock import default_lock_path
        from steerc.compiler.lock_calibration import read_strength

        lock = default_lock_path(spec_path) if lock_path is None else Path(lock_path)
        strength, entry = read_strength(lock, str(spec_path))
    program, diags = resolve(decls, env or DiskEnvironment(), catalogue_override=catalogue_override,
                             collector=col, strength=strength)
    return Loaded(program, tuple(diags), tuple(specs), entry)


def load_program(spec_path: str | os.PathLike, *, catalogue_override: str | None = None,
                 env: Environment | None = None) -> Program:
    """The resolved Program of a spec file (see `load` for diagnostics)."""
    return load(spec_path, catalogue_override=catalogue_override, env=env).program


# ---- the real environment ----------------------------------------------------------------


class CatalogueAdapter:
    """`steerc.catalogue.Catalogue` seen through resolve's CatalogueView (several SAEs at once)."""

    def __init__(self, cat):
        self.cat = cat
        self.sha256 = cat.sha256
        self.warnings = list(getattr(cat, "warnings", ()))
        self._all = [s.id for s in cat.saes()]

    def saes(self):
        return self.cat.saes()

    def get(self, sae: str, index: int):
        return self.cat.get(sae, index)

    def by_label(self, sae: str, label: str):
        return self.cat.by_label(sae, label)

    def search(self, query: str, saes, limit: int):
        if sorted(saes) == sorted(self._all):
            return self.cat.search(query, None, limit)
        return [h for s in saes for h in self.cat.search(query, s, limit)][:limit]

    def tagged(self, tag: str, saes, limit: int | None):
        hits = [h for s in saes for h in self.cat.tagged(tag, s, limit)]
        return hits if limit is None else hits[:limit]

    def suggest(self, label: str, sae: str):
        return self.cat.suggest(sae, label)


@functools.lru_cache(maxsize=1)
def saes_code_sha256() -> str:
    """One hash over every .py file of the steerc.saes package (sorted relative paths): the
    SAE content hash depends on sae.py, layout.py and each format's loader alike."""
    import steerc.saes

    root = Path(inspect.getfile(steerc.saes)).parent
    parts = [f"{p.relative_to(root).as_posix()}\t{file_sha256(p)}" for p in sorted(root.rglob("*.py"))]
    return bytes_sha256("\n".join(parts).encode())


class DiskEnvironment:
    """Reads SAE configs (no weights; the content hash is cached), catalogues and model configs.

    allow_pickle: let torch-pickled SAEs load (`--allow-pickle`); refused (E307) otherwise.
    fetch_weights: a model named on the Hub is fetched with its safetensors (compile, trace),
        not only its config and tokenizer (check, explain). progress: show download bars."""

    def __init__(self, allow_pickle: bool = False, *, fetch_weights: bool = False, progress: bool = True):
        self.allow_pickle = allow_pickle
        self.fetch_weights = fetch_weights
        self.progress = progress

    def sae_info(self, path: Path) -> SaeInfo:
        from steerc.saes import load_sae

        sae = load_sae(path, allow_pickle=self.allow_pickle)
        files = [path] if os.path.isfile(path) else [p for p in path.iterdir() if os.path.isfile(p)]
        # keyed by the SAE package's code too, so a change to how SAEs are read or hashed
        # (sae.py, layout.py, formats/*.py) never serves a stale value
        kind = "sae-sha256:" + saes_code_sha256()
        sha = cached_by_files(kind, files, sae.sha256)
        return SaeInfo(sae.cfg.hook_name, sae.cfg.d_in, sae.cfg.d_sae, sha, sae.cfg.format)

    def open_catalogue(self, path: Path) -> CatalogueView:
        from steerc.catalogue import Catalogue

        return CatalogueAdapter(Catalogue.open(path))

    def model_width(self, path: Path) -> int | None:
        """The hidden size config.json states (None without a config.json)."""
        from steerc.compiler.modeldesc import CONFIG, HIDDEN_KEYS, config_int, read_config

        if not os.path.lexists(path / CONFIG):
            return None
        return config_int(read_config(path), HIDDEN_KEYS)

    def model_layers(self, path: Path) -> int | None:
        """The layer count config.json states (None without a config.json); E607 when it is
        not a JSON object. The same reader as the validation pass (modeldesc.py)."""
        from steerc.compiler.modeldesc import CONFIG, LAYER_KEYS, config_int, read_config

        if not os.path.lexists(path / CONFIG):
            return None
        return config_int(read_config(path), LAYER_KEYS)
