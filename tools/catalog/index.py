"""Hybrid catalogue search: exact SKU and codes, weighted lexical match, semantic vectors, attribute re-ranking.

Scores are 0..100. For a query:

* **lexical**: every name, written alias and learned alias is a *key* of tokens. Each query token earns a
  credit for the vocabulary tokens it can stand for (exact 1.0, one typo 0.75, two typos 0.5 for long words via
  rapidfuzz OSA distance, a bare number naming a code prefix ``26`` -> ``26a`` or ``42.5`` -> ``42.5n`` 0.8).
  ``lexical = 50 * query_coverage + 50 * key_coverage`` where both coverages are weighted by the token's
  inverse document frequency *in this catalogue* (BM25's idf): a word that half the item master carries
  (``white``, ``box``) counts less than a rare one (``cement``); numbers and pack words count a quarter.
  Product codes stay hard constraints: a query code (``26a``, ``a4``, ``500ml``) must be carried by an item
  that carries codes, and an item without any code scores ``CODE_PENALTY`` times less.
* **semantic** (when vectors are given): cosine of the query's vector to each item's, calibrated per query
  as ``clip((cosine - median cosine over the catalogue - floor) / span, 0, 1)`` (the model's noise floor and
  span), fused as ``lexical + w * semantic * (100 - lexical)``: the semantic evidence fills part of what the
  words left unexplained, so it adds recall, breaks lexical ties and never lowers a lexical hit.
* **attributes** (:mod:`tools.catalog.attributes`): an item whose colour, size or grade contradicts the text is
  multiplied by ``CONFLICT_FACTOR`` (it cannot win over a compatible one); each attribute the text states that
  the item has adds ``AGREE_BONUS``.

Candidates are found through an inverted index (token -> items) plus the semantic top ``SEMANTIC_TOP``; nothing
loops over the whole catalogue in Python, so a ``match()`` stays within milliseconds on 10,000 items. ``match()``
does not embed a query whose words are already the catalogue's own (lexical best >= ``LEXICAL_SURE``): the
embedding is most of the cost of a new query, and semantics would not change that decision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from core.domain import CatalogItem
from tools.catalog.attributes import UOM, agreements, conflicts, item_attributes, text_attributes
from tools.catalog.embeddings import Embedder, EmbedFn, FunctionEmbedder, Vectors, _normalise, item_text
from tools.catalog.lexicon import GRADE_NOUNS, MEASURES, SIZE_WORDS
from tools.catalog.results import MatchResult, Scored
from tools.catalog.text import STOPWORDS, has_digit, is_code, is_number, singular, tokens

__all__ = [
    "CANDIDATE_MIN", "MARGIN", "MATCH_MIN", "CatalogIndex", "MatchResult", "Scored", "STOPWORDS",
    "is_code", "singular", "tokens",
]  # fmt: skip


_UNIT_TAIL = re.compile(r"(?<=\d)(cm|mm|m|in|ft|kg|g|l|ml)$")
"""A unit written after the last number of a size code (``90x110cm``)."""

MATCH_MIN = 62.0
"""A single item at or above this score, with no rival within ``MARGIN``, is a confident match."""
CANDIDATE_MIN = 45.0
"""Items below this score are never offered as candidates."""
MARGIN = 10.0
"""Items within this many points of the best are rivals: the match is ambiguous between them."""
CODE_PENALTY = 0.7
"""Score factor for an item without codes when the query names a code ("usb 64gb" is not the USB mouse)."""
CONFLICT_FACTOR = 0.5
"""Score factor for an item whose colour, size or grade contradicts the text."""
AGREE_BONUS = 5.0
"""Points per attribute of the text (colour, size, grade) that the item has too."""
LEXICAL_POOL = 120
"""How many items, by weighted query coverage, are scored in full (the rest cannot be close to the best)."""
LEXICAL_SURE = 80.0
"""A lexical best at or above this is decided without embedding the query (see ``CatalogIndex._decisive``)."""
SEMANTIC_TOP = 30
"""How many nearest items by vector join the lexical candidates."""
_LIGHT = 0.25  # weight share of numbers and pack words in coverage

# Words of item names that name no product: a typo of one of them names nothing either.
_NOT_PRODUCT = frozenset({*SIZE_WORDS, *GRADE_NOUNS, *UOM, *MEASURES, "with", "without", "for", "and"})
_LEADING = re.compile(r"^\d+(?:\.\d+)?")
_SQUARED = re.compile(r"\d+(?:\.\d+)?(?:mm|cm|m)2")


@dataclass(slots=True)
class _Entry:
    item: CatalogItem
    order: int
    keys: list[tuple[str, ...]]
    vocab: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    joined: dict[str, tuple[str, str]] = field(default_factory=dict)  # "hardhat" -> ("hard", "hat")


def _entry(item: CatalogItem, order: int, learned: Sequence[str]) -> _Entry:
    texts = [item.name, re.sub(r"\([^)]*\)", " ", item.name), *item.aliases, *learned]
    texts += re.findall(r"\(([A-Za-z]{1,4}\d{2,}[A-Za-z]{0,2})\)", item.name)
    keys: list[tuple[str, ...]] = []
    for text in texts:
        key = tuple(tokens(text))
        if key and key not in keys:
            keys.append(key)
    entry = _Entry(item, order, keys)
    for key in keys:
        entry.vocab.update(key)
        for a, b in zip(key, key[1:], strict=False):
            if not has_digit(a + b):
                entry.joined[a + b] = (a, b)
    entry.vocab.update(entry.joined)
    entry.codes = {t for t in entry.vocab if is_code(t)}
    return entry


def _light(token: str) -> float:
    """Share of a token in coverage: numbers and pack words count ``_LIGHT`` (the attributes rank packs)."""
    return _LIGHT if is_number(token) or token in UOM else 1.0


class CatalogIndex:
    """Search index over catalogue items, built once (keys, idf, postings and vectors precomputed).

    Args:
        items: the catalogue rows; SKUs must be unique.
        embed: an :class:`~tools.catalog.embeddings.Embedder`, or a plain batch function (texts -> vectors),
            for semantic search; ``None`` for lexical only. Queries are embedded once each (cached).
        item_vectors: precomputed item vectors, shape ``(len(items), dim)``, in item order (rows of zeros for
            items without one); when omitted and ``embed`` is given, items are embedded here.
        aliases: learned aliases, ``{sku: [phrase, ...]}``; each phrase is one more key of its item.
        semantic_weight: share of the semantic score in the blend, 0..1.

    Raises:
        ValueError: duplicate SKUs, a ``semantic_weight`` outside 0..1, or vectors of the wrong shape.
    """

    def __init__(
        self,
        items: Sequence[CatalogItem],
        *,
        embed: Embedder | EmbedFn | None = None,
        item_vectors: Vectors | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
        semantic_weight: float = 0.5,
    ) -> None:
        if not 0.0 <= semantic_weight <= 1.0:
            raise ValueError("semantic_weight must be within 0..1")
        self.items: tuple[CatalogItem, ...] = tuple(items)
        learned = {k.lower(): list(v) for k, v in (aliases or {}).items()}
        self._by_sku: dict[str, int] = {}
        self._entries: list[_Entry] = []
        for order, item in enumerate(self.items):
            key = item.sku.lower()
            if key in self._by_sku:
                raise ValueError(f"duplicate SKU {item.sku}")
            self._by_sku[key] = order
            self._entries.append(_entry(item, order, learned.get(key, ())))
        postings: dict[str, list[int]] = {}
        for idx, e in enumerate(self._entries):
            for t in e.vocab:
                postings.setdefault(t, []).append(idx)
        self._postings = {t: np.asarray(p, dtype=np.int32) for t, p in postings.items()}
        # Tie-break for the candidate pool: among items explaining the query equally, shorter names first.
        self._shortness = np.asarray([1e-4 * min(len(k) for k in e.keys) for e in self._entries], dtype=np.float64)
        self._attributes = [item_attributes(i) for i in self.items]
        self._key_lights = [[(k, [_light(t) for t in k], sum(_light(t) for t in k) or 1.0) for k in e.keys]
                            for e in self._entries]  # fmt: skip
        self.vocabulary: frozenset[str] = frozenset(postings)
        """Every token of every key (including joined pairs such as ``hardhat``)."""
        n = max(len(self._entries), 1)
        self._idf = {t: math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}
        self._max_idf = math.log(1.0 + (n + 0.5) / 0.5)
        self._words_by_len: dict[int, list[str]] = {}
        for t in self.vocabulary:
            if not has_digit(t):
                self._words_by_len.setdefault(len(t), []).append(t)
        # Code lookups: "26a" names "cf226a" (a suffix), "26" or "42.5" names "26a" or "42.5n" (number + letters).
        self._code_suffix: dict[str, list[str]] = {}
        self._code_lead: dict[str, list[str]] = {}
        for v in self.vocabulary:
            if not is_code(v):
                continue
            for k in range(1, len(v) - 1):
                self._code_suffix.setdefault(v[k:], []).append(v)
            lead = _LEADING.match(v)
            if lead and v[lead.end() :].isalpha():
                self._code_lead.setdefault(lead.group(0), []).append(v)
            unit = _UNIT_TAIL.search(v)
            if unit and is_code(v[: unit.start()]):
                self._code_lead.setdefault(v[: unit.start()], []).append(v)  # "90x110" names "90x110cm"
            if _SQUARED.fullmatch(v):
                self._code_lead.setdefault(v[:-1], []).append(v)  # "2.5mm" names cable of "2.5mm2" (mm²)
        self._credit_cache: dict[str, dict[str, float]] = {}
        self._embedder: Embedder | None = None
        if embed is not None:
            self._embedder = (
                cast(Embedder, embed) if hasattr(embed, "queries") else FunctionEmbedder(cast(EmbedFn, embed))
            )
        self._semantic_weight = semantic_weight
        self._vectors: Vectors | None = None
        self._query_vectors: dict[str, Vectors] = {}
        if self._embedder is not None and self.items:
            if item_vectors is None:
                texts = [item_text(i) for i in self.items]
                item_vectors = self._embedder.passages(texts)
            vecs = np.asarray(item_vectors, dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(self.items):
                raise ValueError(f"item_vectors must have {len(self.items)} rows, got shape {vecs.shape}")
            self._vectors = _normalise(vecs)

    # -- lookups -----------------------------------------------------------------------------------------------

    def get(self, sku: str) -> CatalogItem | None:
        """Return the item with this SKU (case-insensitive), or ``None``."""
        idx = self._by_sku.get(sku.strip().lower())
        return None if idx is None else self.items[idx]

    def is_known_code(self, token: str) -> bool:
        """Return ``True`` when ``token`` (normalised) is a product code of some item (``26x``, ``26/6``)."""
        return token.lower() in self.vocabulary and is_code(token.lower())

    @property
    def has_vectors(self) -> bool:
        """``True`` when semantic search is on."""
        return self._vectors is not None

    # -- lexical -----------------------------------------------------------------------------------------------

    def _weight(self, token: str) -> float:
        """Weight of a query token: its idf in this catalogue, lighter for numbers, pack words and colours."""
        return self._idf.get(token, self._max_idf) * _light(token)

    def _credits(self, qt: str) -> dict[str, float]:
        """Vocabulary tokens a query token can stand for, with the credit (0..1) each earns (cached)."""
        hit = self._credit_cache.get(qt)
        if hit is not None:
            return hit
        out: dict[str, float] = {}
        if qt in self.vocabulary:
            out[qt] = 1.0
        if has_digit(qt):
            if is_code(qt) and len(qt) >= 2:
                for v in self._code_suffix.get(qt, ()):
                    out[v] = 1.0  # "26a" names "cf226a"
                for v in self._code_lead.get(qt, ()):
                    out.setdefault(v, 1.0)  # "90x110" names "90x110cm" (a size without its unit)
            elif is_number(qt):
                for v in self._code_lead.get(qt, ()):
                    out[v] = 0.8  # "26" could be "26a" or "26x"; "42.5" is "42.5n"
        elif len(qt) == 3:
            # A three-letter word may only be a four-letter word missing its last letter ("blu" for "blue").
            for v in self._words_by_len.get(4, ()):
                if v.startswith(qt):
                    out.setdefault(v, 0.75)
        elif len(qt) >= 4:
            max_edits = 1 if len(qt) <= 6 else 2
            pool = [
                v
                for n in range(len(qt) - max_edits, len(qt) + max_edits + 1)
                for v in self._words_by_len.get(n, ())
                # Typos rarely hit the first letter ("sand" is not "hand"); a short word inside a longer query
                # word is another word ("chai" in "chair"), a letter slipped into it is not ("marsh" for "mash").
                if v != qt and len(v) >= 4 and v[0] == qt[0] and not (len(v) < len(qt) and len(v) <= 4 and v in qt)
                and v not in _NOT_PRODUCT  # "site" is no typo of "size": a word that names no product
            ]
            for v, d, _ in process.extract(qt, pool, scorer=OSA.distance, score_cutoff=max_edits, limit=None):
                out[v] = max(out.get(v, 0.0), 1.0 - 0.25 * d)
        if len(self._credit_cache) > 50_000:
            self._credit_cache.clear()
        self._credit_cache[qt] = out
        return out

    def _lexical(self, qtoks: list[str]) -> dict[int, float]:
        """Lexical score 0..100 per entry index (entries scoring 0 or excluded are left out)."""
        credits = [self._credits(t) for t in qtoks]
        weights = [
            max((self._weight(v) for v in cr), default=self._weight(t)) for t, cr in zip(qtoks, credits, strict=True)
        ]
        total_weight = sum(weights) or 1.0
        code_credits = [cr for t, cr in zip(qtoks, credits, strict=True) if is_code(t)]
        products = [t.isalpha() and t not in UOM and t not in MEASURES for t in qtoks]
        # Query coverage of every item at once from the postings (numpy); only the best LEXICAL_POOL items by
        # coverage are scored in full.
        cover = np.zeros(len(self._entries), dtype=np.float64)
        for cr, w in zip(credits, weights, strict=True):
            if not cr:
                continue
            hits = np.zeros(len(self._entries), dtype=np.float64)
            for v, c in cr.items():
                ids = self._postings[v]
                hits[ids] = np.maximum(hits[ids], c)
            cover += w * hits
        pool = np.flatnonzero(cover)
        if len(pool) > LEXICAL_POOL:
            ranked = cover[pool] - self._shortness[pool]
            pool = pool[np.argpartition(-ranked, LEXICAL_POOL - 1)[:LEXICAL_POOL]]
        scores: dict[int, float] = {}
        for idx in pool.tolist():
            e = self._entries[idx]
            missing_code = any(not any(v in e.vocab for v in cr) for cr in code_credits)
            if missing_code and e.codes:
                continue  # the query names a code this item does not carry
            matched: dict[str, float] = {}
            total = 0.0
            named = False  # whether a product word of the query (not a number, size or unit) is the item's
            for cr, w, product in zip(credits, weights, products, strict=True):
                best = max((c for v, c in cr.items() if v in e.vocab), default=0.0)
                total += best * w
                named = named or (product and best > 0)
                if best > 0:
                    for v, c in cr.items():
                        if c == best and v in e.vocab:
                            for part in e.joined.get(v, (v,)):
                                matched[part] = max(matched.get(part, 0.0), best)
            if total == 0.0 or (any(products) and not named):
                continue  # "paint brushes 4 inch" is no 4-inch nail: a size alone names nothing
            qcov = total / total_weight
            kcov = max(
                sum(matched.get(t, 0.0) * lt for t, lt in zip(key, lights, strict=True)) / denom
                for key, lights, denom in self._key_lights[idx]
            )
            scores[idx] = (50.0 * qcov + 50.0 * kcov) * (CODE_PENALTY if missing_code else 1.0)
        return scores

    # -- semantic ----------------------------------------------------------------------------------------------

    def query_vector(self, query: str) -> Vectors | None:
        """The query's unit vector, or ``None`` without semantic search.

        What is embedded is the text's product words and colours (as for items, see
        :func:`~tools.catalog.embeddings.item_text`): ``"hard hats (yellow)"`` -> ``"hard hat yellow"``. Each
        distinct text is embedded once (cached).
        """
        if self._embedder is None or self._vectors is None:
            return None
        a = text_attributes(query)
        text = " ".join([*a.words, *sorted(a.colours)]) or query.strip().lower()
        vec = self._query_vectors.get(text)
        if vec is None:
            vec = self._embedder.queries([text])[0]
            if len(self._query_vectors) > 10_000:
                self._query_vectors.clear()
            self._query_vectors[text] = vec
        return vec

    def _semantic(self, query: str) -> tuple[np.ndarray[Any, Any], list[int]]:
        """Calibrated semantic similarity (0..1) of every item, and the nearest ``SEMANTIC_TOP`` indices."""
        assert self._vectors is not None and self._embedder is not None
        qv = self.query_vector(query)
        assert qv is not None
        # einsum, not ``@``: a matrix-vector product this size is faster on one core than through the BLAS
        # thread pool, which on a busy small machine waits for its threads (measured: p50 0.6 ms vs 12 ms).
        cos = np.einsum("ij,j->i", self._vectors, qv)
        base = float(np.median(cos))
        sem = np.clip((cos - base - self._embedder.floor) / self._embedder.span, 0.0, 1.0)
        k = min(SEMANTIC_TOP, len(cos))
        top = np.argpartition(-cos, k - 1)[:k] if k else np.array([], dtype=int)
        return sem, [int(i) for i in top if sem[i] > 0]

    # -- ranking -----------------------------------------------------------------------------------------------

    def _ranked(self, query: str, *, full: bool = True) -> list[Scored]:
        """Rank items; ``full=False`` skips embedding the query when the lexical ranking is already decisive."""
        sku_hit = self._by_sku.get(query.strip().lower())
        if sku_hit is not None:
            return [Scored(self.items[sku_hit], 100.0, 0.0, (), 100.0)]
        qtoks = tokens(query)
        if not qtoks:
            return []
        lexical = self._lexical(qtoks)
        sem: np.ndarray[Any, Any] | None = None
        pool = set(lexical)
        if self._vectors is not None and (full or not self._decisive(lexical)):
            sem, near = self._semantic(query)
            pool.update(near)
        qcodes = any(is_code(t) for t in qtoks)
        qattrs = text_attributes(query)
        has_attrs = bool(qattrs.colours or qattrs.measures or qattrs.grades or qattrs.pack)
        w = self._semantic_weight
        out: list[Scored] = []
        for idx in pool:
            e = self._entries[idx]
            if qcodes and idx not in lexical and e.codes:
                continue  # a code conflict is not overruled by semantics
            lex = lexical.get(idx, 0.0)
            s_sem = float(sem[idx]) if sem is not None else 0.0
            score = lex + w * s_sem * (100.0 - lex)
            notes: tuple[str, ...] = ()
            if has_attrs and score > 0:
                iattrs = self._attributes[idx]
                bad = conflicts(qattrs, iattrs)
                good = agreements(qattrs, iattrs)
                notes = tuple(f"-{b}" for b in bad) + tuple(f"+{g}" for g in good)
                score = score * CONFLICT_FACTOR if bad else min(100.0, score + AGREE_BONUS * len(good))
            if score > 0:
                out.append(Scored(e.item, round(lex, 2), round(s_sem, 3), notes, round(score, 2)))
        out.sort(key=lambda s: (-s.score, self._by_sku[s.item.sku.lower()]))
        return out

    @staticmethod
    def _decisive(lexical: dict[int, float]) -> bool:
        """A lexical ranking that semantics would not change: the text's words are the catalogue's own words.

        Near-duplicates that differ only by an attribute the text did not give stay ambiguous either way.
        """
        return max(lexical.values(), default=0.0) >= LEXICAL_SURE

    def explain(self, query: str, limit: int = 10) -> list[Scored]:
        """Rank items with the parts of each score (lexical, semantic, attributes, final); see :class:`Scored`."""
        return self._ranked(query)[:limit]

    def search(self, query: str, limit: int = 5) -> list[tuple[CatalogItem, float]]:
        """Rank items for a query.

        Args:
            query: free text (``"hp toner 26a"``, ``"CF226A"``, ``"a4 papr"``, ``"TON-CF226X"``).
            limit: maximum number of results.

        Returns:
            Up to ``limit`` ``(item, score)`` pairs, score 0..100, best first (ties in catalogue order).
            An exact SKU returns only that item with score 100.
        """
        return [(s.item, s.score) for s in self._ranked(query)[:limit]]

    def match(self, query: str) -> MatchResult:
        """Decide whether a query names one item, several, or none.

        Args:
            query: free text naming one product.

        Returns:
            ``match`` when the best item scores at least ``MATCH_MIN`` and no other item is within
            ``MARGIN`` points; ``ambiguous`` with every item within ``MARGIN`` of the best (and above
            ``CANDIDATE_MIN``) otherwise; ``none`` when nothing reaches ``CANDIDATE_MIN``.
        """
        ranked = self._ranked(query, full=False)
        if not ranked or ranked[0].score < CANDIDATE_MIN:
            return MatchResult("none")
        top = ranked[0].score
        close = tuple((s.item, s.score) for s in ranked if s.score >= max(CANDIDATE_MIN, top - MARGIN))
        if len(close) == 1 and top >= MATCH_MIN:
            return MatchResult("match", close)
        return MatchResult("ambiguous", close)
