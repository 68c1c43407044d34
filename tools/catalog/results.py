"""What a catalogue search returns: a match decision and ranked items with the parts of their scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.domain import CatalogItem


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What :meth:`CatalogIndex.match` decided for a query.

    Attributes:
        status: ``"match"`` (one confident item), ``"ambiguous"`` (several plausible items, or a single weak
            one to confirm) or ``"none"``.
        candidates: ``(item, score)`` pairs, best first: the one match, the rivals, or empty.
    """

    status: Literal["match", "ambiguous", "none"]
    candidates: tuple[tuple[CatalogItem, float], ...] = ()

    @property
    def item(self) -> CatalogItem | None:
        """The matched item when ``status == "match"``, else ``None``."""
        return self.candidates[0][0] if self.status == "match" else None

    @property
    def score(self) -> float:
        """Best score, 0..100 (0 when nothing matched)."""
        return self.candidates[0][1] if self.candidates else 0.0

    @property
    def skus(self) -> list[str]:
        """SKUs of the candidates, best first."""
        return [item.sku for item, _ in self.candidates]


@dataclass(frozen=True, slots=True)
class Scored:
    """One ranked item with the parts of its score (for ``procure catalog search``).

    Attributes:
        item: the catalogue item.
        lexical: lexical score 0..100.
        semantic: calibrated semantic similarity 0..1 (0 without vectors).
        attributes: ``+colour``/``-grade``... agreements and conflicts with the text.
        score: final score 0..100.
    """

    item: CatalogItem
    lexical: float
    semantic: float
    attributes: tuple[str, ...]
    score: float
