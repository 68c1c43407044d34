"""Answers to "which one?": the candidate a person's words pick, and the amount said with it.

A line waiting for a choice holds its candidates (``Line.candidates``, no SKU). The answer may name a size ("20
litres", "64 gig", "the big ones"), a clothing or shoe size ("10 pls" among sizes 9 and 10), words of one
candidate ("for the hilux 2kd"), or what it is not ("the normal one, not high yield"); it may carry a count ("2 of
the 20 litre ones"). Everything here is read against the candidates' own names; nothing is about products.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.domain import CatalogItem, Line
from tools.catalog import CatalogIndex, singular, tokens
from tools.catalog.attributes import item_attributes, text_attributes
from tools.extraction.edit_ops import Edit
from tools.extraction.edit_readers import _quantity_in, _replaced, _with_quantity
from tools.extraction.lexicon import _NOISE
from tools.extraction.quantities import _number_at
from tools.extraction.reconcile import _choose_among, _choose_by_size
from tools.extraction.units import normalize_unit

_NEGATIONS = frozenset({"not", "no", "si", "sio", "siyo", "except", "without"})


def choice_edits(words: list[str], draft: list[Line], catalog: CatalogIndex) -> list[Edit] | None:
    """The replace edit for the one waiting line the answer settles, or ``None``.

    Read before amounts and additions: "20 litres" for a line choosing between a 5 L and a 20 L jerrycan is the
    choice, not a new amount, and "for the hilux 2kd" is not a new line.

    Args:
        words: one clause of the message, tokenised, fillers kept.
        draft: the draft's lines.
        catalog: the catalogue index.
    """
    text = " ".join(w for w in words if w not in _NOISE)
    chosen: list[Edit] = []
    for i, line in enumerate(draft):
        if line.sku is not None or len(line.candidates) < 2:
            continue
        items = [item for sku in line.candidates if (item := catalog.get(sku)) is not None]
        choice = _pick(words, text, items, line, catalog)
        if choice is None:
            continue
        new = _replaced(line, choice)
        count = _count_said(words)
        if count is not None:
            new = _with_quantity(new, count, None, catalog)
        chosen.append(Edit("replace_item", index=i, line=new))
    return chosen if len(chosen) == 1 else None


def _pick(
    words: list[str], text: str, items: Sequence[CatalogItem], line: Line, catalog: CatalogIndex
) -> CatalogItem | None:
    negated = _after_negation(words)
    if negated:
        return _excluding(words, negated, items)
    choice = _choose_by_size(text, items) or _by_size_number(words, items)
    if choice is None and _quantity_in(words, catalog) is None:
        choice = _choose_among(text, items, context=line.description)
    return choice


def _after_negation(words: list[str]) -> list[str]:
    """The words after "not" ("the normal one not high yield" -> ["high", "yield"])."""
    for k, w in enumerate(words):
        if w in _NEGATIONS and k + 1 < len(words):
            return [t for t in words[k + 1 :] if t not in _NOISE]
    return []


def _excluding(words: list[str], negated: list[str], items: Sequence[CatalogItem]) -> CatalogItem | None:
    """The one candidate left when those with the negated words are out (and the words before fit it)."""
    out = {singular(t) for t in tokens(" ".join(negated))}
    left = [i for i in items if not out & {singular(t) for t in tokens(i.name)}]
    if len(left) == 1:
        return left[0]
    before = " ".join(w for w in words[: len(words) - len(negated) - 1] if w not in _NOISE)
    return _choose_among(before, left) if left and before else None


def _by_size_number(words: list[str], items: Sequence[CatalogItem]) -> CatalogItem | None:
    """A bare number that is the "SIZE n" of exactly one candidate ("10 pls" among gumboots sizes 9 and 10)."""
    plain = [w for w in words if w not in _NOISE]
    if len(plain) != 1 or not plain[0].isdigit():
        return None
    grade = plain[0]
    sized = [i for i in items if grade in item_attributes(i).grades]
    every = all(item_attributes(i).grades for i in items)
    return sized[0] if len(sized) == 1 and every else None


def _count_said(words: list[str]) -> Decimal | None:
    """A count at the start that is not a size ("2 of the 20 litre ones" -> 2; "20 litres" -> None)."""
    number = _number_at(words, 0)
    if number is None or number[1] >= len(words):
        return None
    nxt = words[number[1]]
    if nxt in ("of", "x", "za", "ya") or (normalize_unit(nxt) is not None and not text_attributes(f"1 {nxt}").measures):
        return number[0]
    return None
