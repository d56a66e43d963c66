"""Where a spec's model and SAEs are: the one place a declaration becomes a path on disk.

    loc = locate_model(decl)          # Located(path, hub): a local folder, or a Hub cache folder
    loc = locate_sae(decl)

Rules (docs/language.md, "Models and SAEs by name"):
- every path in a spec is relative to the file that declares it; absolute paths as written;
- `model "org/name[@rev]"` is a Hub id unless it starts with `/`, `./`, `../` or `~`; when a
  folder of that name also exists next to the spec, the spec is ambiguous (E262) and must say
  `./org/name` (the folder) or `model hub "org/name"` (the Hub);
- `model hub "..."`, `sae A = hub "org/repo[@rev]" [path "folder"]` and
  `sae A = saelens "release[@rev]" id "sae id"` always name the Hub (steerc.hub fetches them).

Errors are DiagnosticErrors at the declaration's string. A missing local path is not an error
here: the caller reports it (E207) with what it was looking for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from steerc.compiler import ast
from steerc.compiler.ir import HubSource
from steerc.diagnostics import Diagnostic, DiagnosticError, Span


@dataclass(frozen=True)
class Located:
    """A declaration resolved to disk: `path` to read, `hub` when it came from the Hub."""

    path: str
    hub: HubSource | None = None


def spec_relative(span: Span, path: str) -> str:
    """`path` as written in the file of `span`, made relative to that file's directory."""
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(os.path.dirname(span.file), path))


def _fail(code: str, message: str, s: ast.Str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, s.span, hint)])


def _fetch_hint(s: ast.Str, command: str) -> str:
    return f"`steerc fetch {s.span.file}` downloads what the spec needs, or: {command}"


def _ref(s: ast.Str, what: str, example: str):
    from steerc.hub import HubRef, parse_ref

    ref = parse_ref(s.value, bare=True)
    if not isinstance(ref, HubRef):
        _fail("E263", f"{what}: {ref}", s, f'e.g. "{example}" or "{example}@main"')
    return ref


def model_is_hub(decl: ast.ModelDecl) -> bool:
    """Whether `decl` names a Hub repo (E262 when a plain string is both a folder and an id)."""
    from steerc.hub import is_explicit_path, looks_like_hub_id

    text = decl.path.value
    if decl.kind == "hub":
        return True
    if is_explicit_path(text) or os.path.isabs(text) or not looks_like_hub_id(text):
        return False
    local = spec_relative(decl.path.span, text)
    if os.path.exists(local):
        _fail("E262", f"'{text}' names both a folder next to the spec ('{local}') and a Hub model id",
              decl.path, f'write "./{text}" for the folder, or  model hub "{text}"  for the Hub repo')
    return True


def locate_model(decl: ast.ModelDecl, *, weights: bool = False, progress: bool = True) -> Located:
    """The model's folder: spec-relative, or its Hub cache snapshot (config and tokenizer
    files; the safetensors too with `weights`)."""
    from steerc.hub import HubError, fetch_model
    from steerc.hub.fetch import model_download_command

    if not model_is_hub(decl):
        return Located(spec_relative(decl.path.span, os.path.expanduser(decl.path.value)))
    ref = _ref(decl.path, "model", "google/gemma-2-2b")
    try:
        snap = fetch_model(ref.repo, ref.revision, weights=weights, progress=progress,
                           command=_fetch_hint(decl.path, model_download_command(ref.repo, ref.revision)))
    except HubError as e:
        _fail(e.code, e.message, decl.path, e.hint)
    return Located(snap.path, HubSource(ref.repo, ref.revision, snap.commit))


def locate_sae(decl: ast.SaeDecl, *, progress: bool = True) -> Located:
    """The SAE's file or folder: spec-relative, or its folder in the Hub cache."""
    from steerc.hub import HubError, fetch_folder, saelens_location
    from steerc.hub.fetch import folder_download_command

    if decl.kind == "plain":
        return Located(spec_relative(decl.path.span, decl.path.value))
    release = sae_id = None
    try:
        if decl.kind == "saelens":
            release, _, rev = decl.path.value.partition("@")
            sae_id = decl.sub.value
            repo, folder = saelens_location(release, sae_id)
            revision = rev or None
        else:
            ref = _ref(decl.path, f"SAE '{decl.alias.value}'", "google/gemma-scope-2b-pt-res")
            repo, revision = ref.repo, ref.revision
            folder = decl.sub.value.strip("/") if decl.sub and decl.sub.value.strip("/") else None
        command = _fetch_hint(decl.path, folder_download_command(repo, revision, folder))
        snap = fetch_folder(repo, revision, folder, what=f"SAE '{decl.alias.value}'", command=command,
                            progress=progress)
    except HubError as e:
        _fail(e.code, e.message, decl.sub if e.code in ("E266", "E268") and decl.sub else decl.path, e.hint)
    return Located(snap.path, HubSource(repo, revision, snap.commit, folder, release, sae_id))


def sae_key(decl: ast.SaeDecl) -> tuple:
    """What an SAE declaration names, comparable across files (two `use`d files may declare one
    alias twice only for the same SAE): the real path, or the Hub source as written."""
    if decl.kind == "plain":
        path = spec_relative(decl.path.span, decl.path.value)
        try:
            path = os.path.realpath(path)
        except ValueError:  # a NUL from a "\u0000" escape; reported where the file is opened
            pass
        return ("plain", path)
    return (decl.kind, decl.path.value, decl.sub.value.strip("/") if decl.sub else None)
