"""Resolve: AST statements -> `ir.Program` (resolver.py: declarations and names; rules.py:
rules, `when`, `enforce json`, `expect`). The names other modules use are re-exported here."""

from steerc.compiler.resolve.resolver import (DEFAULT_JSON_STRENGTH, RESIDUAL_SPACE_HOOKS, CatalogueView,
                                              Declarations, Environment, SaeInfo, missing_file, resolve,
                                              spec_relative)

__all__ = ["DEFAULT_JSON_STRENGTH", "RESIDUAL_SPACE_HOOKS", "CatalogueView", "Declarations",
           "Environment", "SaeInfo", "missing_file", "resolve", "spec_relative"]
