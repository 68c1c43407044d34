"""One item segment into a purchase-request line: match, unit conversion, pieces vs packs, self-corrections."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal

from rapidfuzz.distance import OSA

from core.domain import CatalogItem, Line
from tools.catalog import CANDIDATE_MIN, MATCH_MIN, CatalogIndex, MatchResult, singular, tokens
from tools.catalog.attributes import agreements, item_attributes, text_attributes
from tools.catalog.brands import brand_items
from tools.catalog.glossary import translated
from tools.extraction.lexicon import (
    _CHATTER_MAX,
    _NUM_RE,
    _REFERENCE_WORDS,
    _SELF_CORRECTIONS,
    _WEAK_CORRECTIONS,
    AMBIGUOUS_MAX,
    CHECK_CONFIDENCE,
    DEFAULT_QUANTITY_FACTOR,
    FREE_TEXT_CONFIDENCE,
    NOT_CONVERTED_MAX,
    UNSPECIFIED_UNIT,
)
from tools.extraction.quantities import _SIZE_SUFFIX, _item_words, _Qty
from tools.extraction.reconcile import _better, _choose_among, _reconcile
from tools.extraction.units import UNIT_ALIASES, catalog_unit, convert, normalize_unit, pack_size, tidy

# Lowest score at which a counted unit that an item's pack holds lets that item be offered for checking.
_INNER_UNIT_MIN = 40.0
# A brand word with more items than this, and nothing else to narrow them, names no item in particular.
_BRAND_CHOICES = 5


@dataclass(slots=True)
class _ItemParse:
    line: Line | None
    unresolved: str | None = None


def _match_confidence(result: MatchResult) -> float:
    if result.status == "match":
        return round(min(1.0, 0.6 + 0.4 * (result.score - MATCH_MIN) / (100.0 - MATCH_MIN)), 3)
    if result.status == "ambiguous":
        return round(min(AMBIGUOUS_MAX, 0.2 + 0.3 * result.score / 100.0), 3)
    return FREE_TEXT_CONFIDENCE


def _line_for_item(
    item: CatalogItem,
    quantity: Decimal,
    unit: str | None,
    confidence: float,
    *,
    explicit_quantity: bool = True,
) -> Line:
    """A catalogue line, converting the requested quantity to the catalogue unit when exact.

    When the conversion is not exact the requested quantity and unit are kept, the price is left out (a
    price per box times a count of pieces would be wrong) and the confidence drops below the ask threshold.
    """
    conv = convert(quantity, unit, item)
    if not explicit_quantity:
        confidence *= DEFAULT_QUANTITY_FACTOR
    if not conv.exact:
        return Line(
            description=item.name,
            quantity=conv.quantity,
            unit=conv.unit,
            sku=item.sku,
            unit_price=None,
            confidence=round(min(confidence, NOT_CONVERTED_MAX), 3),
            proposal=None if conv.proposal is None else str(conv.proposal),
        )
    return Line(
        description=item.name,
        quantity=conv.quantity,
        unit=conv.unit,
        sku=item.sku,
        unit_price=item.unit_price,
        confidence=round(confidence, 3),
        asked=f"{tidy(quantity)} {unit}" if conv.converted and unit else None,
    )


def _container_of_several(unit: str | None, result: MatchResult) -> bool:
    """Whether the unit named is the catalogue unit of more than one candidate (it cannot choose between them)."""
    return unit is not None and sum(1 for item, _ in result.candidates if catalog_unit(item) == unit) > 1


def _parse_item(toks: list[str], catalog: CatalogIndex) -> _ItemParse | None:
    """Read one item segment (fillers already removed) into a line, or ``None`` when it holds nothing."""
    qty, rest = _item_words(toks, catalog)
    if qty is not None and qty.value <= 0:
        return None  # "all prices are zero": nothing is ordered in zeros
    sized = _size_not_amount(qty, rest, catalog)
    if sized is not None:
        qty, rest = None, sized  # "need DAP 50kg": the 50 kg bag, how many is asked
    statement = getattr(toks, "statement", False)
    query = " ".join(rest)
    if not tokens(query) or all(t in _REFERENCE_WORDS for t in rest):
        return None
    result = catalog.match(query)
    if result.status != "match":
        spoken = translated(rest, catalog.vocabulary)  # "simiti 42.5" -> "cement 42.5", "rangi nyeupe"
        if spoken != rest:
            heard = catalog.match(" ".join(spoken))
            if _better(heard, result):
                result, query, rest = heard, " ".join(spoken), spoken
    if result.status == "none":
        expanded = _expand_acronyms(rest, catalog)
        if expanded != rest:
            spelled = catalog.match(" ".join(expanded))
            if _better(spelled, result):
                result, query = spelled, " ".join(expanded)  # "3 boxes of ORS": ORAL REHYDRATION SALTS
    if result.status == "none":
        result = _by_brand(rest, catalog)  # "unga 2kg": the 2 kg flour of the supplier UNGA LTD
    if result.status == "none" and qty is not None and qty.unit is not None:
        result = _by_inner_unit(query, qty.unit, catalog)  # "40 rolls toilet paper": a pack of rolls
    tail = getattr(toks, "tail", ())
    if statement and result.status != "match":
        return None  # "we are 14 in the workshop": a fact may name an item outright, never start a question
    if tail and not statement:
        # "cooking oil for the kitchen": the purpose may name the item's use or just where it goes.
        longer = catalog.match(" ".join([*rest, *tail]))
        if _better(longer, result):
            result, query = longer, " ".join([*rest, *tail])
    if qty is None and result.status != "none" and _chatter(query, catalog):
        return None
    unit = qty.unit if qty else None
    # "3 box files": the unit word may belong to the name.
    if qty is not None and qty.unit_index is not None:
        alt_query = " ".join([toks[qty.unit_index], *rest])
        alt = catalog.match(alt_query)
        main_conv = convert(qty.value, unit, result.item) if result.item else None
        no_rule = main_conv is not None and not main_conv.exact and not main_conv.fractional
        # "2 jerrycans bleach" when every bleach is sold by the jerrycan: the container word chooses nothing.
        shared = result.status == "ambiguous" and _container_of_several(unit, result)
        if (
            alt.status == "match"
            and not shared
            and (result.status != "match" or (no_rule and alt.score >= result.score))
        ):
            alt_conv = convert(qty.value, unit, alt.item) if alt.item else None
            if result.status == "ambiguous" and alt_conv is not None and (alt_conv.exact or alt_conv.fractional):
                result = alt  # "3 reams of a4 for the printer": the unit confirms the item; it stays the unit
            else:
                result, unit, query = alt, None, alt_query
    if result.status == "match" and result.item is not None:
        item = result.item
        if qty is not None and unit is None:
            unit = _inner_unit_said(item, rest)
        if qty is not None and unit is None:
            unit = _counted_unit(item, qty.value, toks[qty.end :])
        quantity = qty.value if qty else Decimal(1)
        line = _line_for_item(item, quantity, unit, _match_confidence(result), explicit_quantity=qty is not None)
        if qty is None and (_is_plural(rest[-1]) or sized is not None):
            # "need bleach and mops": several, but how many is not said; asked rather than assumed to be 1.
            line = dataclasses.replace(
                line,
                unit_price=None,
                asked=None,
                proposal=None,
                confidence=round(min(line.confidence, NOT_CONVERTED_MAX), 3),
            )
        return _ItemParse(line)
    if result.status == "ambiguous" and len(result.candidates) == 1:
        # One close item, not a sure match: priced and shown in the summary for the person to check (marked by
        # ``candidates == [sku]``), not asked about in a separate question.
        only = result.candidates[0][0]
        if qty is not None and unit is None:
            unit = _inner_unit_said(only, rest)
        if qty is not None and unit is None:
            unit = _counted_unit(only, qty.value, toks[qty.end :])  # "50 serviettes" of packs of 100: pieces
        line = _line_for_item(only, qty.value if qty else Decimal(1), unit, CHECK_CONFIDENCE,
                              explicit_quantity=qty is not None)  # fmt: skip
        return _ItemParse(dataclasses.replace(line, candidates=[only.sku]))
    if result.status == "ambiguous":
        chosen = _reconcile(query, [item for item, _ in result.candidates], unit)
        if chosen is not None:
            item = chosen
            if qty is not None and unit is None:
                unit = _counted_unit(item, qty.value, toks[qty.end :])
            quantity = qty.value if qty else Decimal(1)
            return _ItemParse(_line_for_item(item, quantity, unit, CHECK_CONFIDENCE + 0.1,
                                             explicit_quantity=qty is not None))  # fmt: skip
        if qty is not None and unit is None:
            counted = {_counted_unit(item, qty.value, toks[qty.end :]) for item, _ in result.candidates}
            if counted == {"piece"}:
                unit = "piece"  # "100 paper cups" of cups sold in packs: pieces, whichever pack is chosen
        units = {item.unit for item, _ in result.candidates}
        line_unit = unit or (units.pop() if len(units) == 1 else UNSPECIFIED_UNIT)
        confidence = _match_confidence(result) * (1.0 if qty else DEFAULT_QUANTITY_FACTOR)
        return _ItemParse(
            Line(
                description=query,
                quantity=tidy(qty.value) if qty else Decimal(1),
                unit=line_unit,
                sku=None,
                confidence=round(confidence, 3),
                candidates=result.skus,
            )
        )
    # Nothing in the catalogue: a free-text line when a count says it is a request, unless the clause only
    # states a fact ("we are 25 people").
    if statement:
        return None
    # "room 12", "grade 4": a number after a noun with no unit labels it; it does not count a free-text item
    label = qty is not None and _is_label(qty, toks)
    if qty is not None and not label and not (qty.unit is None and toks[qty.start] in ("a", "an") and qty.start > 0):
        return _ItemParse(
            Line(
                description=query,
                quantity=tidy(qty.value),
                unit=unit or UNSPECIFIED_UNIT,
                confidence=FREE_TEXT_CONFIDENCE,
            ),
            unresolved=query,
        )
    if any(len(t) >= 4 for t in rest):
        return _ItemParse(None, unresolved=query)
    return None


def _is_label(qty: _Qty, toks: list[str]) -> bool:
    """A number in digits after a noun, with no unit ("room 204", "grade 4"): it labels, it counts nothing.

    Number words are counts wherever they stand: Swahili puts them after the noun ("helmet kumi na mbili").
    """
    return (
        qty.kind in (3, 4)
        and qty.unit is None
        and qty.start > 0
        and toks[qty.start - 1].isalpha()
        and toks[qty.start][:1].isdigit()
    )


def _is_plural(word: str) -> bool:
    """An English plural noun ("mops", "batteries"), not a unit word or a code."""
    return word.isalpha() and len(word) > 3 and singular(word) != word and normalize_unit(word) is None


def _chatter(query: str, catalog: CatalogIndex) -> bool:
    """Whether words without a quantity reach the catalogue only through typos of short words.

    "Friday is fine" ~ "file", "mark this approved" ~ "mask": conversation, not an item.
    """
    words = tokens(query)
    if any(w in catalog.vocabulary for w in words):
        return False
    return all(len(w) <= _CHATTER_MAX or catalog.match(w).status == "none" for w in words)


def _size_not_amount(qty: _Qty | None, rest: list[str], catalog: CatalogIndex) -> list[str] | None:
    """The words with the measure as a size when the only amount said is the size of an item sold by the piece.

    "need DAP 50kg" of ``FERTILIZER DAP 50KG BAG`` (sold by the bag): 50 kg is which bag, not how much; the
    words become "dap 50kg" and the amount is asked. ``None`` when the measure is an amount.
    """
    if qty is None or qty.kind == 0 or qty.unit not in _SIZE_SUFFIX or not rest:
        return None
    words = [*rest, f"{qty.value.normalize():f}{_SIZE_SUFFIX[qty.unit]}"]
    found = catalog.match(" ".join(words))
    if found.status != "match" or found.item is None or catalog_unit(found.item) == qty.unit:
        return None
    size = text_attributes(words[-1])
    return words if agreements(size, item_attributes(found.item)) else None


def _inner_unit_said(item: CatalogItem, rest: list[str]) -> str | None:
    """The pack's inner unit when the words end with it: "20 toilet rolls", "10 a4 reams", "500 paracetamol tablets".

    The last word must be a unit the item's pack holds: its inner unit, or a piece word the name itself uses
    (``TABLETS - PKT 100`` holds tablets; ``SACHET - BOX 50`` holds sachets). ``None`` otherwise.
    """
    if not rest or (len(rest) > 1 and _NUM_RE.fullmatch(rest[-2])):
        return None
    tail = normalize_unit(rest[-1])
    pack = pack_size(item)
    if tail is None or pack is None or tail == item.unit or pack.count <= 1:
        return None
    if tail == pack.unit:
        return tail
    named = {normalize_unit(t, standalone=False) for t in tokens(item.name)}
    return tail if pack.unit == "piece" and tail in named and tail != catalog_unit(item) else None


def _counted_unit(item: CatalogItem, value: Decimal, after: list[str]) -> str | None:
    """``"piece"`` when a count names the things packed inside the item rather than its packs.

    "100 blue biros" of pens sold in boxes of 50, "12 AA batteries" sold in packs of 4, "make it 20 markers":
    the count comes first, the words after it end with a noun of the item itself (not a unit), the item's
    name states how many pieces one unit holds, and no unit word is given. A count that is not a whole number
    of packs ("3 notebooks" of packs of 10) is then offered as whole packs, never ordered as 3 packs.
    """
    pack = pack_size(item)
    words = [t for t in after if t not in ("of", "more", "x")]
    if pack is None or pack.unit != "piece" or pack.count <= 1 or not words:
        return None
    size = text_attributes(" ".join(words[:2]))
    if size.measures and agreements(size, item_attributes(item)) and not any(_unit_like(w) for w in words[2:]):
        return "piece"  # "48 x 1 litre juice" of cartons of 12 x 1L: 48 pieces of that size
    nouns = {
        t for text in (item.name, *item.aliases) for t in tokens(text) if normalize_unit(t, standalone=False) is None
    }
    if any(_unit_like(w) and singular(w) not in nouns for w in words):
        return None  # "6 dust masks boxes", "5 boxs of pens": a unit (even misspelt) names what is counted
    last = words[-1]
    if re.fullmatch(r"[a-z]+", last) and normalize_unit(last) is None and singular(last) in nouns:
        return "piece"
    # "100 paper cups 8oz": a plural noun of the item among the words, whatever follows it
    plural = [w for w in words if re.fullmatch(r"[a-z]+", w) and singular(w) != w and normalize_unit(w) is None]
    return "piece" if any(singular(w) in nouns for w in plural) else None


def _unit_like(word: str) -> bool:
    """A unit word, or a one-typo spelling of one of four letters or more ("boxs", "packts", "bottels")."""
    if normalize_unit(word, standalone=False) is not None:
        return True
    # a one-letter slip that keeps the first letter and length ("boxs", "bxes"); "bars", "tags" are not "bags"
    return (
        len(word) >= 4
        and word.isalpha()
        and any(
            len(spelling) >= 4
            and spelling[0] == word[0]
            and spelling[-1] == word[-1]
            and OSA.distance(word, spelling) <= 1
            and (len(word) != len(spelling) or sorted(word) == sorted(spelling))
            for spelling in UNIT_ALIASES
        )
    )


def _correction_cue(toks: list[str]) -> tuple[int, int, bool] | None:
    """Where a self-correction cue ("no wait", "sorry", "I mean") sits in a segment: (start, end, weak)."""
    for i in range(len(toks)):
        for cue in _SELF_CORRECTIONS:
            if tuple(toks[i : i + len(cue)]) == cue:
                return i, i + len(cue), cue in _WEAK_CORRECTIONS
    return None


def _corrected(before: list[str], after: list[str], catalog: CatalogIndex, weak: bool) -> list[list[str]]:
    """The item segment(s) from "<before> no wait <after>": the later words win, the rest is kept.

    "fifty bags of cement" + "sixty bags" -> "sixty bags cement"; "5 boxes a4 paper" + "a3 paper" ->
    "5 boxes a3 paper"; a complete later item replaces the earlier one, except after a weak cue when it names
    another item ("5 mops, and actually 3 helmets" keeps both).
    """
    qa, words_a = _item_words(before, catalog)
    qb, words_b = _item_words(after, catalog)
    if words_b and not all(t in _REFERENCE_WORDS for t in words_b):
        if qb is not None and weak and words_a:
            a, b = catalog.match(" ".join(words_a)), catalog.match(" ".join(words_b))
            if a.skus[:1] != b.skus[:1] or not a.skus:
                return [before, after]
        if qb is not None or qa is None:
            return [after]
        return [before[qa.start : qa.end] + words_b]
    if qb is None:
        return [before]
    number = after[qb.start : qb.end]
    if qb.unit is None and qa is not None and qa.unit_index is not None:
        number = [*number, before[qa.unit_index]]
    return [number + words_a]


_ACRONYMS: dict[int, tuple[CatalogIndex, dict[str, list[tuple[str, ...]]]]] = {}


def _acronyms(catalog: CatalogIndex) -> dict[str, list[tuple[str, ...]]]:
    """Initials of the leading words of item names ("ORAL REHYDRATION SALTS" -> "ors"), from the item master.

    Only initials of three or four words that are not already a word of the catalogue are kept.
    """
    cached = _ACRONYMS.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    found: dict[str, list[tuple[str, ...]]] = {}
    for item in catalog.items:
        words = [t for t in tokens(item.name) if t.isalpha()]
        for n in (3, 4):
            if len(words) >= n:
                initials = "".join(w[0] for w in words[:n])
                if initials not in catalog.vocabulary:
                    found.setdefault(initials, []).append(tuple(words[:n]))
    if len(_ACRONYMS) > 8:
        _ACRONYMS.clear()
    _ACRONYMS[id(catalog)] = (catalog, found)
    return found


def _by_brand(words: list[str], catalog: CatalogIndex) -> MatchResult:
    """The items of the supplier a brand word names, narrowed by the other words; never a sure match.

    One item left is shown for the person to check (a single weak candidate); a few are asked about; a brand
    with many items and nothing to narrow them says nothing (``none``).
    """
    items, other = brand_items(words, catalog)
    if other and len(items) > 1:
        chosen = _choose_among(" ".join(other), items)
        items = (chosen,) if chosen is not None else items
    if not items or len(items) > _BRAND_CHOICES:
        return MatchResult("none")
    return MatchResult("ambiguous", tuple((item, float(CANDIDATE_MIN)) for item in items))


def _by_inner_unit(query: str, unit: str, catalog: CatalogIndex) -> MatchResult:
    """The one near item packing what the person counted ("rolls" of ``TISSUE TOILET - PKT 10 ROLLS``), to check.

    Words that fall a little short of a candidate still name it when the unit counted is what that item's pack
    holds and no other item near it packs the same; the line is shown for checking, never a sure match.
    """
    near = [(item, score) for item, score in catalog.search(query, 8) if score >= _INNER_UNIT_MIN]
    packing = [(item, score) for item, score in near if (pack := pack_size(item)) is not None and pack.unit == unit]
    if len(packing) != 1 or unit == catalog_unit(packing[0][0]):
        return MatchResult("none")
    return MatchResult("ambiguous", (packing[0],))


def _expand_acronyms(words: list[str], catalog: CatalogIndex) -> list[str]:
    """The words with an unknown word that is the initials of one item name's leading words spelled out."""
    table = _acronyms(catalog)
    out: list[str] = []
    for w in words:
        spelled = table.get(w) if w.isalpha() and 3 <= len(w) <= 4 and w not in catalog.vocabulary else None
        out.extend(spelled[0] if spelled and len(set(spelled)) == 1 else [w])
    return out
