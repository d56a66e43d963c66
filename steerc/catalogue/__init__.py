"""steerc.catalogue: feature labels, tags and statistics, indexed for lookup and search.

Public API (other stages build against exactly this):
  FeatureInfo, CatalogueSae   frozen records
  Catalogue.open(path)        a JSON catalogue or a built .sqlite index
  build_index(source, out)    JSON catalogue (file or dict) -> .sqlite index
  import_neuronpedia(...)     Neuronpedia explanation/feature exports -> catalogue dict
  validate_catalogue(doc)     the diagnostics for a parsed document
See docs/catalogue.md for the format and specs/schemas/catalogue.schema.json for its schema.
"""

from steerc.catalogue.build_index import build_index
from steerc.catalogue.neuronpedia import import_neuronpedia
from steerc.catalogue.store import Catalogue
from steerc.catalogue.types import CatalogueSae, FeatureInfo, normalize_name
from steerc.catalogue.validate import CATALOGUE_VERSION, catalogue_schema, validate_catalogue

__all__ = [
    "CATALOGUE_VERSION",
    "Catalogue",
    "CatalogueSae",
    "FeatureInfo",
    "build_index",
    "catalogue_schema",
    "import_neuronpedia",
    "normalize_name",
    "validate_catalogue",
]
