"""Catalogue search: exact SKU, product codes, names and aliases, with typo tolerance and optional embeddings.

The index is built once per catalogue. Every name and alias is normalised (lower case, punctuation
removed, simple plurals singularised, filler words dropped) into a *key* of tokens. A query is scored
against each item by

* query coverage: how much of the query the item's vocabulary explains (exact token 1.0, one typo 0.75,
  two typos 0.5 for long words, a bare number naming a code prefix such as ``26`` for ``26a`` 0.8), and
* key coverage: how much of the item's best key the query explains (so ``"stapler"`` prefers the alias
  ``stapler`` over ``stapler pins``),

``score = 50 * query_coverage + 50 * key_coverage`` on a 0..100 scale. Product codes are hard constraints:
a query token that mixes letters and digits (``26a``, ``a4``, ``y12``, ``cf226x``) must appear in an item
that carries codes, otherwise the item is excluded (``HP 26A`` never matches the 26X); an item without any
code scores ``CODE_PENALTY`` times less (``usb 64gb`` is not the USB mouse).

Optional semantic search: pass ``embed`` (texts -> vectors); the final score is then
``max(lexical, (1 - semantic_weight) * lexical + semantic_weight * 100 * max(cosine, 0))``: embeddings add
recall (``"something to write with"`` finds the pens) and break lexical ties, but never lower a lexical hit.
Code conflicts still exclude an item. Real embedding models differ in their cosine range; tune the weight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz.distance import OSA

from core.domain import CatalogItem

EmbedFn = Callable[[list[str]], list[list[float]]]
"""Embeds a batch of texts; returns one vector (list of floats) per text, in order."""

# Words that carry no product meaning in a catalogue query.
STOPWORDS = frozenset(
    {
        "a", "an", "the", "of", "for", "and", "with", "to", "in", "on", "some", "my", "our", "your",
        "any", "pls", "please", "this", "that", "these", "those", "it", "is", "are", "we", "i", "us",
    }
)  # fmt: skip

# Thresholds on the 0..100 score (tuned on examples/catalog.csv; see tests/test_catalog_match.py).
MATCH_MIN = 62.0
"""A single item at or above this score, with no rival within ``MARGIN``, is a confident match."""
CANDIDATE_MIN = 45.0
"""Items below this score are never offered as candidates."""
MARGIN = 10.0
"""Items within this many points of the best are rivals: the match is ambiguous between them."""

CODE_PENALTY = 0.7
"""Score factor for an item without codes when the query names a code ("usb 64gb" is not the USB mouse)."""

_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[a-z]")
_LEADING_DIGITS = re.compile(r"^\d+")
_CODE_IN_NAME = re.compile(r"\(([A-Za-z]{1,4}\d{2,}[A-Za-z]{0,2})\)")
_PARENS = re.compile(r"\([^)]*\)")
_KEEP_PUNCT = re.compile(r"(?<=\d)([./])(?=\d)")


_IRREGULAR = {"mice": "mouse", "knives": "knife", "leaves": "leaf", "feet": "foot", "teeth": "tooth"}


def singular(word: str) -> str:
    """Return a simple singular of an English plural (``boxes`` -> ``box``, ``batteries`` -> ``battery``).

    Words with digits and words of three letters or fewer are kept as they are (but ``mice`` -> ``mouse``).
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or _DIGIT.search(word):
        return word
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_SIZE_UNITS = {
    "g": "g", "gr": "g", "gram": "g", "grams": "g", "kg": "kg", "kgs": "kg", "ml": "ml", "l": "l", "ltr": "l",
    "litre": "l", "litres": "l", "liter": "l", "liters": "l", "gb": "gb", "mm": "mm", "cm": "cm",
}  # fmt: skip
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_SIZE_UNITS, key=len, reverse=True)) + r")\b")


def tokens(text: str) -> list[str]:
    """Normalise text into matching tokens.

    Lower case; punctuation becomes a space except ``.`` and ``/`` between digits (``42.5n``, ``26/6``);
    stopwords are dropped; simple plurals are singularised.

    Args:
        text: any text (a query, a name, an alias).

    Returns:
        The tokens, in order (may be empty).
    """
    # "500 g", "500g" and "500 grams" are one size token ("500g") on both sides, so a size in a query counts as
    # the item's code instead of excluding it.
    text = _SIZE.sub(lambda m: m.group(1) + _SIZE_UNITS[m.group(2)], text.lower())
    s = _KEEP_PUNCT.sub(lambda m: "\x00" if m.group(1) == "." else "\x01", text)
    s = re.sub(r"[^a-z0-9\x00\x01]+", " ", s).replace("\x00", ".").replace("\x01", "/")
    return [singular(t) for t in s.split() if t not in STOPWORDS]


def is_code(token: str) -> bool:
    """Return ``True`` for a product-code-like token: letters and digits (``26a``, ``a4``), or ``26/6``."""
    return bool(_DIGIT.search(token)) and (bool(_LETTER.search(token)) or "/" in token)


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", token))


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


@dataclass(slots=True)
class _Entry:
    item: CatalogItem
    order: int
    keys: list[tuple[str, ...]]
    vocab: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    # joined adjacent pair ("hardhat") -> the two tokens it stands for
    joined: dict[str, tuple[str, str]] = field(default_factory=dict)


class CatalogIndex:
    """Search index over catalogue items, built once (normalised keys precomputed).

    Args:
        items: the catalogue rows; SKUs must be unique.
        embed: optional batch embedding function for semantic search (texts -> vectors). Called once at
            construction for the items and once per new query (results cached).
        semantic_weight: share of the cosine score in the blended score when ``embed`` is given, 0..1.

    Raises:
        ValueError: on duplicate SKUs or a ``semantic_weight`` outside 0..1.
    """

    def __init__(
        self,
        items: Sequence[CatalogItem],
        *,
        embed: EmbedFn | None = None,
        semantic_weight: float = 0.5,
    ) -> None:
        if not 0.0 <= semantic_weight <= 1.0:
            raise ValueError("semantic_weight must be within 0..1")
        self.items: tuple[CatalogItem, ...] = tuple(items)
        self._by_sku: dict[str, CatalogItem] = {}
        self._entries: list[_Entry] = []
        for order, item in enumerate(self.items):
            key = item.sku.lower()
            if key in self._by_sku:
                raise ValueError(f"duplicate SKU {item.sku}")
            self._by_sku[key] = item
            self._entries.append(self._entry(item, order))
        self.vocabulary: frozenset[str] = frozenset(t for e in self._entries for t in e.vocab)
        """Every token of every key (including joined pairs such as ``hardhat``)."""
        self._words_by_len: dict[int, list[str]] = {}
        for t in self.vocabulary:
            if not _DIGIT.search(t):
                self._words_by_len.setdefault(len(t), []).append(t)
        self._codes = [t for t in self.vocabulary if _DIGIT.search(t)]
        self._embed = embed
        self._semantic_weight = semantic_weight
        self._item_vectors: list[list[float]] = []
        self._query_vectors: dict[str, list[float]] = {}
        if embed is not None and self.items:
            self._item_vectors = [_unit(v) for v in embed([_doc(i) for i in self.items])]

    @staticmethod
    def _entry(item: CatalogItem, order: int) -> _Entry:
        texts = [item.name, _PARENS.sub(" ", item.name), *item.aliases]
        texts += _CODE_IN_NAME.findall(item.name)
        keys: list[tuple[str, ...]] = []
        for text in texts:
            key = tuple(tokens(text))
            if key and key not in keys:
                keys.append(key)
        entry = _Entry(item, order, keys)
        for key in keys:
            entry.vocab.update(key)
            for a, b in zip(key, key[1:], strict=False):
                if not _DIGIT.search(a + b):
                    entry.joined[a + b] = (a, b)
        entry.vocab.update(entry.joined)
        entry.codes = {t for t in entry.vocab if is_code(t)}
        return entry

    def get(self, sku: str) -> CatalogItem | None:
        """Return the item with this SKU (case-insensitive), or ``None``."""
        return self._by_sku.get(sku.strip().lower())

    def is_known_code(self, token: str) -> bool:
        """Return ``True`` when ``token`` (normalised) is a product code of some item (``26x``, ``26/6``)."""
        return token.lower() in self.vocabulary and is_code(token.lower())

    # -- scoring -------------------------------------------------------------------------------------------

    def _credits(self, qt: str) -> dict[str, float]:
        """Vocabulary tokens a query token can stand for, with the credit (0..1) each earns."""
        out: dict[str, float] = {}
        if qt in self.vocabulary:
            out[qt] = 1.0
        if _DIGIT.search(qt):
            for v in self._codes:
                if v == qt:
                    continue
                if is_code(qt) and len(qt) >= 2 and v.endswith(qt) and is_code(v):
                    out[v] = 1.0  # "26a" names "cf226a"
                elif _is_number(qt) and is_code(v):
                    lead = _LEADING_DIGITS.match(v)
                    if lead and lead.group(0) == qt:
                        out[v] = 0.8  # "26" could be "26a" or "26x"
            return out
        if len(qt) == 3:
            # A three-letter word may only be a four-letter word with its last letter dropped ("blu" for
            # "blue", "wir" for "wire"); otherwise short words must be exact ("mop" is not "map").
            for v in self._words_by_len.get(4, ()):
                if v.startswith(qt):
                    out.setdefault(v, 0.75)
            return out
        if len(qt) < 4:
            return out
        max_edits = 1 if len(qt) <= 6 else 2
        for n in range(len(qt) - max_edits, len(qt) + max_edits + 1):
            for v in self._words_by_len.get(n, ()):
                # Typos rarely hit the first letter ("sand" is not "hand"), and a short word inside a longer
                # query word is another word ("chai" in "chair").
                if v == qt or len(v) < 4 or v[0] != qt[0] or (len(v) < len(qt) and len(v) <= 4):
                    continue
                d = OSA.distance(qt, v, score_cutoff=max_edits)
                if d <= max_edits:
                    out[v] = max(out.get(v, 0.0), 1.0 - 0.25 * d)
        return out

    def _lexical(self, qtoks: list[str]) -> dict[int, float]:
        """Lexical score 0..100 per entry index (entries scoring 0 or excluded are left out)."""
        credits = [self._credits(t) for t in qtoks]
        code_credits = [cr for t, cr in zip(qtoks, credits, strict=True) if is_code(t)]
        scores: dict[int, float] = {}
        for idx, e in enumerate(self._entries):
            missing_code = any(not any(v in e.vocab for v in cr) for cr in code_credits)
            if missing_code and e.codes:
                continue  # the query names a code this item does not carry
            matched: dict[str, float] = {}
            total = 0.0
            for cr in credits:
                best = max((c for v, c in cr.items() if v in e.vocab), default=0.0)
                total += best
                for v, c in cr.items():
                    if c == best and best > 0 and v in e.vocab:
                        for part in e.joined.get(v, (v,)):
                            matched[part] = max(matched.get(part, 0.0), best)
            if total == 0.0:
                continue
            qcov = total / len(qtoks)
            kcov = max(sum(matched.get(t, 0.0) for t in key) / len(key) for key in e.keys)
            scores[idx] = (50.0 * qcov + 50.0 * kcov) * (CODE_PENALTY if missing_code else 1.0)
        return scores

    def _semantic(self, query: str) -> list[float]:
        assert self._embed is not None
        vec = self._query_vectors.get(query)
        if vec is None:
            vec = _unit(self._embed([query])[0])
            self._query_vectors[query] = vec
        return [max(0.0, sum(a * b for a, b in zip(vec, iv, strict=False))) for iv in self._item_vectors]

    def _scores(self, query: str) -> list[tuple[_Entry, float]]:
        sku_hit = self._by_sku.get(query.strip().lower())
        if sku_hit is not None:
            return [(next(e for e in self._entries if e.item is sku_hit), 100.0)]
        qtoks = tokens(query)
        if not qtoks:
            return []
        lexical = self._lexical(qtoks)
        if self._embed is not None and self._item_vectors:
            w = self._semantic_weight
            cos = self._semantic(query)
            qcodes = [t for t in qtoks if is_code(t)]
            combined: dict[int, float] = {}
            for idx, e in enumerate(self._entries):
                if qcodes and idx not in lexical and e.codes:
                    continue  # a code conflict is not overruled by semantics
                lex = lexical.get(idx, 0.0)
                # Semantics add recall; they never lower a lexical score (an alias hit stays a hit).
                s = max(lex, (1.0 - w) * lex + w * 100.0 * cos[idx])
                if s > 0:
                    combined[idx] = s
            lexical = combined
        ranked = sorted(lexical.items(), key=lambda kv: (-kv[1], self._entries[kv[0]].order))
        return [(self._entries[i], round(s, 2)) for i, s in ranked]

    # -- public API ----------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 5) -> list[tuple[CatalogItem, float]]:
        """Rank items for a query.

        Args:
            query: free text (``"hp toner 26a"``, ``"CF226A"``, ``"a4 papr"``, ``"TON-CF226X"``).
            limit: maximum number of results.

        Returns:
            Up to ``limit`` ``(item, score)`` pairs, score 0..100, best first (ties in catalogue order).
            An exact SKU returns only that item with score 100.
        """
        return [(e.item, s) for e, s in self._scores(query)[:limit]]

    def match(self, query: str) -> MatchResult:
        """Decide whether a query names one item, several, or none.

        Args:
            query: free text naming one product.

        Returns:
            ``match`` when the best item scores at least ``MATCH_MIN`` and no other item is within
            ``MARGIN`` points; ``ambiguous`` with every item within ``MARGIN`` of the best (and above
            ``CANDIDATE_MIN``) otherwise; ``none`` when nothing reaches ``CANDIDATE_MIN``.
        """
        ranked = self._scores(query)
        if not ranked or ranked[0][1] < CANDIDATE_MIN:
            return MatchResult("none")
        top = ranked[0][1]
        close = tuple((e.item, s) for e, s in ranked if s >= max(CANDIDATE_MIN, top - MARGIN))
        if len(close) == 1 and top >= MATCH_MIN:
            return MatchResult("match", close)
        return MatchResult("ambiguous", close)


def _doc(item: CatalogItem) -> str:
    """The text embedded for an item: name and aliases."""
    return "; ".join([item.name, *item.aliases])


def _unit(vec: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else [0.0 for _ in vec]


class CatalogCache:
    """A process's catalogue index, rebuilt only when the catalogue table changed.

    Another process may import a new catalogue at any time; the table's row count and last ``updated_at`` are
    checked at most every ``check_seconds`` (one cheap query) and the index is rebuilt when they differ.

    Args:
        check_seconds: how often, in seconds, to look for a changed catalogue.
    """

    def __init__(self, check_seconds: float = 5.0) -> None:
        self.check_seconds = check_seconds
        self._index: CatalogIndex | None = None
        self._version: tuple[object, ...] | None = None
        self._checked = 0.0

    async def get(self, engine: Any) -> CatalogIndex:
        """The current index, loaded with ``engine`` (an SQLAlchemy ``AsyncEngine``) when needed."""
        import time

        from sqlalchemy import func, select

        from core.db import catalog_items
        from core.repo import load_catalog

        now = time.monotonic()
        if self._index is not None and now - self._checked < self.check_seconds:
            return self._index
        async with engine.connect() as conn:
            stmt = select(func.count(), func.max(catalog_items.c.updated_at)).select_from(catalog_items)
            version = tuple((await conn.execute(stmt)).one())
            if self._index is None or version != self._version:
                self._index = CatalogIndex(await load_catalog(conn))
                self._version = version
        self._checked = now
        return self._index
