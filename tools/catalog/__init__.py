"""Catalogue understanding from the item master itself: attributes, hybrid retrieval, embeddings, learned aliases.

Public names other layers use are re-exported here (``from tools.catalog import CatalogIndex``).
"""

from tools.catalog.cache import CatalogCache
from tools.catalog.index import (
    CANDIDATE_MIN,
    MARGIN,
    MATCH_MIN,
    CatalogIndex,
    MatchResult,
    Scored,
    is_code,
    singular,
    tokens,
)

__all__ = [
    "CANDIDATE_MIN",
    "MARGIN",
    "MATCH_MIN",
    "CatalogCache",
    "CatalogIndex",
    "MatchResult",
    "Scored",
    "is_code",
    "singular",
    "tokens",
]
