"""Semantic regions of a generator (Editing in Style): catalogs, queries and painted masks."""
from .builder import build_catalog
from .catalog import Catalog, find_catalog
from .masks import DEFAULT_MASK_MODE, MASK_MODES, mask_clusters, mask_rows
from .queries import QueryParams, blend_styles, query_layers

__all__ = ["Catalog", "build_catalog", "find_catalog", "DEFAULT_MASK_MODE", "MASK_MODES", "mask_clusters",
           "mask_rows", "QueryParams", "blend_styles", "query_layers"]
