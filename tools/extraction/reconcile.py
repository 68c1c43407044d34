"""Reconciling the words with catalogue items: choices by attribute, variants of an item, better readings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from core.domain import CatalogItem
from tools.catalog import CatalogIndex, MatchResult, singular, tokens
from tools.catalog.attributes import (
    ItemAttributes,
    agreements,
    conflicts,
    grade_matches,
    item_attributes,
    text_attributes,
)
from tools.catalog.text import has_digit
from tools.extraction.lexicon import _NOISE
from tools.extraction.units import catalog_unit


def _reconcile(query: str, candidates: list[CatalogItem], unit: str | None) -> CatalogItem | None:
    """The one candidate the text settles, or ``None``.

    The only one sold in the container the person named ("2 buckets white paint"); else the one whose size, grade
    or colour the text names ("the 50 kilo ones"); else the only one whose product words the text names all of
    ("paper cups 8oz": the cups, not the lids for paper cups).
    """
    if unit is not None and unit not in ("piece", "dozen"):
        same = [item for item in candidates if catalog_unit(item) == unit]
        if len(same) == 1:
            return same[0]
    chosen = _choose_among(query, candidates)
    if chosen is not None and _attribute_choice(query, chosen):
        return chosen  # "DAP fertiliser, the 50 kilo ones": the size named picks the bag
    words = {singular(t) for t in tokens(query)}
    asked = text_attributes(query)
    extra = [_unnamed(item_attributes(item), words, asked) for item in candidates]
    best = min(extra)
    if best == 0 and extra.count(best) == 1:
        return candidates[extra.index(best)]
    return None


def _unnamed(attrs: ItemAttributes, words: set[str], asked: ItemAttributes) -> int:
    """How many of an item's words and attributes (grade, colour, size) the text does not name."""
    count = len(set(attrs.words) - words) + len(attrs.colours - asked.colours)
    count += sum(1 for g in attrs.grades if not any(grade_matches(q, g) for q in asked.grades))
    count += sum(1 for m in attrs.measures if not any(q.dimension == m.dimension and q.base == m.base
                                                      for q in asked.measures))  # fmt: skip
    return count


def _better(a: MatchResult, b: MatchResult) -> bool:
    """Whether match ``a`` reads the text better than ``b``: a surer kind, or the same kind scoring higher."""
    rank = {"match": 2, "ambiguous": 1, "none": 0}
    if rank[a.status] != rank[b.status]:
        return rank[a.status] > rank[b.status]
    if a.status == "ambiguous" and len(a.candidates) != len(b.candidates):
        return len(a.candidates) < len(b.candidates)
    return a.status != "none" and a.score > b.score


def _choose_among(
    text: str, items: Sequence[CatalogItem], unit: str | None = None, context: str = ""
) -> CatalogItem | None:
    """The one item of ``items`` that the person's words single out, or ``None``.

    Each item scores 3 per attribute of the text it has (colour, size, grade, the container named) and 1 per word
    of the text in its name; an item that contradicts the text is out. Between equal scores, the item with fewer
    words and attributes the person left unnamed wins ("8oz" for "paper cups": the cups, not the lids for paper
    cups). Words that fit every item the same choose nothing ("the big one" among two sizes).

    Args:
        text: the person's words ("the 13kg", "orange", "22G blue", "the 20 litre jerrycans").
        items: the items to choose from (a line's candidates, or an item's siblings).
        unit: a unit the person named, canonical (``"jerrycan"``), which counts as a named container.
        context: earlier words about the same line ("paper cups"), read with ``text`` for the tie-break.
    """
    query = text_attributes(text)
    words = {singular(t) for t in tokens(text) if not has_digit(t)} - _NOISE
    words |= {_SIZE_LETTERS[w] for w in words if w in _SIZE_LETTERS}  # "large" is the item's size "L"
    context_words = words | {singular(t) for t in tokens(context)}
    context_attrs = text_attributes(f"{context} {text}")
    scored: list[tuple[int, int, CatalogItem]] = []
    for item in items:
        attrs = item_attributes(item)
        if conflicts(query, attrs):
            continue
        named = {singular(t) for t in tokens(item.name)} | _sizes_of(item.name)
        score = 3 * len(agreements(query, attrs)) + len(words & named)
        if unit is not None and catalog_unit(item) == unit and unit not in ("piece", "dozen"):
            score += 3
        scored.append((score, -_unnamed(attrs, context_words, context_attrs), item))
    if not scored:
        return None
    scored.sort(key=lambda si: (-si[0], -si[1]))
    best = scored[0][:2]
    if scored[0][0] <= 0 or (len(scored) > 1 and scored[1][:2] == best):
        return None
    return scored[0][2]


# Clothing and glove sizes said in words, as item masters abbreviate them ("GLOVES NITRILE SIZE L").
_SIZE_LETTERS = {
    "small": "s", "medium": "m", "large": "l", "xl": "xl", "xxl": "xxl", "xs": "xs", "ndogo": "s", "kubwa": "l",
}  # fmt: skip


def _sizes_of(name: str) -> set[str]:
    """Letter sizes in an item name ("SIZE L", "- M -"), lower case; a lone letter elsewhere counts only after SIZE."""
    found = set()
    for m in re.finditer(r"\bsize\s+(xxl|xl|xs|s|m|l)\b", name, re.IGNORECASE):
        found.add(m.group(1).lower())
    return found


def _attribute_choice(text: str, item: CatalogItem) -> bool:
    """Whether the size, grade or colour in ``text`` is the item's own ("13kg" of ``GAS LPG 13KG``, "black")."""
    query = text_attributes(text)
    return bool(query.measures or query.grades or query.colours) and bool(agreements(query, item_attributes(item)))


def _sibling_for(old: CatalogItem, new_words: list[str], catalog: CatalogIndex) -> CatalogItem | None:
    """The variant of ``old`` that ``new_words`` name ("A3" for A4 paper, "32.5" for 42.5 cement), or ``None``."""
    product = [t for t in tokens(old.name) if not has_digit(t)]  # the kind of thing, not its grade
    found = catalog.search(" ".join([*new_words, *product]), 12)
    siblings = [item for item, _ in found if item.sku != old.sku and _siblings(old, item)]
    return _choose_among(" ".join(new_words), siblings, context=old.name)  # what is not said stays as it was


def _siblings(a: CatalogItem, b: CatalogItem) -> bool:
    """Two variants of one product (HP 26A / 26X, A4 / A3 paper, OPC 42.5N / PPC 32.5R cement).

    Same category, and similar non-code words, or the same leading product word (item masters name the
    product first: ``CEMENT OPC ...`` / ``CEMENT PPC ...``). The unit may differ: the same paint comes in 4 L
    tins and 20 L buckets.
    """
    if a.category != b.category:
        return False
    la = [t for t in tokens(a.name) if not re.search(r"\d", t)]
    lb = [t for t in tokens(b.name) if not re.search(r"\d", t)]
    if not la or not lb:
        return False
    wa, wb = set(la), set(lb)
    return len(wa & wb) / min(len(wa), len(wb)) >= 0.75 or singular(la[0]) == singular(lb[0])


# "the big ones", "zile ndogo": a size relative to the others offered, in English and Swahili.
_BIGGER = frozenset({"big", "bigger", "biggest", "large", "larger", "largest", "kubwa", "max", "maximum"})
_SMALLER = frozenset({"small", "smaller", "smallest", "little", "ndogo", "mini", "min", "minimum"})
# Clothing and glove sizes in their order, as letters and as words.
_SIZE_ORDER = {"xs": 0, "s": 1, "small": 1, "m": 2, "medium": 2, "l": 3, "large": 3, "xl": 4, "xxl": 5}


def _choose_by_size(text: str, items: Sequence[CatalogItem]) -> CatalogItem | None:
    """The item a size answer picks among ``items``: the one with the size named, or the biggest or smallest.

    "20 litres" picks the only item of that size; "the big ones" picks the item whose size (a measure all the
    items state in one dimension, or a clothing size) is the largest, "the small ones" the smallest. ``None``
    when the text names no size or the size picks no single item.
    """
    query = text_attributes(text)
    if query.measures:
        fitting = [
            i for i in items if agreements(query, item_attributes(i)) and not conflicts(query, item_attributes(i))
        ]
        return fitting[0] if len(fitting) == 1 else None
    words = {singular(t) for t in tokens(text)}
    direction = bool(words & _BIGGER) - bool(words & _SMALLER)  # both said: no direction
    if not direction or len(items) < 2:
        return None
    ranks = _size_ranks(items)
    if ranks is None:
        return None
    best = max(ranks) if direction > 0 else min(ranks)
    return items[ranks.index(best)] if ranks.count(best) == 1 else None


def _size_ranks(items: Sequence[CatalogItem]) -> list[Decimal] | None:
    """One comparable size per item: a measure of one dimension all of them state, else a clothing size."""
    attrs = [item_attributes(i) for i in items]
    for dimension in {m.dimension for m in attrs[0].measures}:
        sizes = [max((m.base for m in a.measures if m.dimension == dimension), default=None) for a in attrs]
        if all(s is not None for s in sizes) and len(set(sizes)) == len(sizes):
            return [s for s in sizes if s is not None]
    ranks: list[Decimal] = []
    for item in items:
        named = _sizes_of(item.name) | ({singular(t) for t in tokens(item.name)} & {"small", "medium", "large"})
        found = {_SIZE_ORDER[w] for w in named}
        if len(found) != 1:
            return None
        ranks.append(Decimal(found.pop()))
    return ranks if len(set(ranks)) == len(ranks) else None
