"""Read-only catalogue questions ("price of HP 26X?", "do we stock A3 paper?") and their answers."""

from __future__ import annotations

import re

from core.domain import CatalogItem
from tools.catalog import CatalogIndex
from tools.extraction.quantities import _prepare, _tokenize
from tools.extraction.units import normalize_unit

_QUESTION_RE = re.compile(
    r"^\s*(?:hi\s+|hello\s+|hey\s+)?(?:do|does|did)\s+(?:we|you|u|they|y'?all)\s+(?:stock|have|has|sell|carry|keep"
    r"|supply|got)\b"
    r"|\b(?:price|prices|cost|costs|pricing|rate)\s+(?:of|for)\b"
    r"|\bhow\s+much\s+(?:is|are|does|do|for|would|will)\b"
    r"|\bwhat(?:'s|\s+is|\s+are)\s+the\s+(?:price|cost|rate)\b"
    r"|\b(?:in\s+stock|available)\s*\??\s*$"
    r"|\bis\s+there\s+(?:any\s+)?\w+"
    r"|\b(?:what|which)\s+[\w\s]+?\s+do\s+(?:we|you)\s+(?:have|stock|sell|carry)\b"
    r"|\bbei\s+ya\b"
    r"|\bmna\b"
)


_REQUEST_RE = re.compile(r"\b(?:need|order|send|want|get\s+us|buy|deliver|purchase|require)\b")


_QUESTION_WORDS = frozenset(
    {"do", "does", "did", "we", "you", "u", "they", "stock", "have", "has", "sell", "carry", "keep", "supply",
     "got", "price", "prices", "cost", "costs", "pricing", "rate", "of", "for", "how", "much", "is", "are",
     "would", "will", "what", "what's", "whats", "the", "in", "available", "there", "any", "which", "bei",
     "ya", "mna", "a", "an", "per", "one", "each", "currently", "still", "hi", "hello", "hey", "right", "now"}
)  # fmt: skip


def is_catalog_question(text: str) -> bool:
    """Return ``True`` for a read-only question about the catalogue (stock or price), not a request.

    Examples: "do we stock A3 paper?", "price of HP 26X?", "how much is cement", "do you have gloves".
    A message that also asks for something ("need", "order", "send"...) is a request, not a question.
    """
    s = _prepare(text).strip()
    return bool(_QUESTION_RE.search(s)) and not _REQUEST_RE.search(s)


def answer_query(text: str, catalog: CatalogIndex) -> list[CatalogItem]:
    """Find the catalogue items a question is about.

    Args:
        text: the question ("price of HP 26X?", "what toners do you have").
        catalog: the catalogue index.

    Returns:
        The one matching item, the candidates when several fit (best first), or ``[]`` when nothing does.
    """
    words = [t for t in _tokenize(_prepare(text)) if t not in _QUESTION_WORDS]
    words = [t for t in words if normalize_unit(t) is None or len(words) == 1]
    if not words:
        return []
    result = catalog.match(" ".join(words))
    return [item for item, _ in result.candidates]
