"""Readers for each kind of correction: which line a reference names, new amounts, removals, additions, swaps."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

from rapidfuzz.distance import OSA

from core.domain import CatalogItem, Line
from tools.catalog import CatalogIndex, is_code, singular, tokens
from tools.catalog.attributes import agreements, grade_matches, item_attributes, text_attributes
from tools.catalog.glossary import translated
from tools.catalog.text import has_digit
from tools.extraction.edit_ops import _ADD_CUES, _BACK_RE, _REMOVE_CUES, _REMOVE_TAIL, _SET_CUES, _SET_FILLERS, Edit
from tools.extraction.items import _counted_unit, _line_for_item, _parse_item
from tools.extraction.lexicon import _NOISE, _REF_PRONOUNS, UNSPECIFIED_UNIT
from tools.extraction.quantities import (
    _choose,
    _named_numbers,
    _number_at,
    _Qty,
    _quantities,
    _spec_numbers,
    _split_and,
    _split_quantities,
    _strip_fillers,
)
from tools.extraction.reconcile import _attribute_choice, _choose_among, _sibling_for, _siblings
from tools.extraction.units import normalize_unit, tidy


def _line_items(line: Line, catalog: CatalogIndex) -> list[CatalogItem]:
    skus = ([line.sku] if line.sku else []) + list(line.candidates)
    return [item for sku in skus if (item := catalog.get(sku)) is not None]


# Words around a reference to a line that name nothing ("I said 15 masks", "the masks are too many").
_NOT_NAMING = frozenset(
    {"the", "a", "an", "my", "our", "of", "for", "on", "to", "and", "in", "i", "we", "said", "meant", "asked",
     "wanted", "ordered", "wrote", "told", "you", "are", "is", "too", "many", "much", "just", "only", "all"}
)  # fmt: skip


def _line_index(ref: list[str], draft: list[Line], catalog: CatalogIndex) -> int | None:
    """Which draft line a reference ("the paper", "toner", "it", "the 26x", "the glovs") names, or ``None``.

    Each line is scored by how many reference words its own words (description, item name and aliases, the
    candidates' names) contain, exactly or with one typo for words of five letters or more; the single best
    line wins when it holds more than half of the words; a tie names nothing.
    """
    words = [singular(t) for t in ref if t not in _NOT_NAMING]
    if not draft:
        return None
    if not words or all(w in _REF_PRONOUNS for w in words):
        return 0 if len(draft) == 1 else None
    words = [w for w in words if w not in _REF_PRONOUNS]  # "it 3 staplers": the noun names the line
    words = [singular(t) for t in translated(words, catalog.vocabulary)]  # "ondoa sukari": the sugar line
    scores: list[float] = []
    for line in draft:
        texts = [line.description, *(t for item in _line_items(line, catalog) for t in (item.name, *item.aliases))]
        vocab = {singular(t) for text in texts for t in tokens(text)}
        score = 0.0
        for w in words:
            if w in vocab or (has_digit(w) and any(grade_matches(w, v) for v in vocab if has_digit(v))):
                score += 1.0
            elif len(w) >= 5 and any(len(v) >= 4 and OSA.distance(w, v) <= 1 for v in vocab):
                score += 0.75
        scores.append(score)
    best = max(scores)
    if best * 2 <= len(words) or scores.count(best) > 1:
        return None  # most of the words must name the line ("paper not" / "a3 paper" do not name the A4 line)
    return scores.index(best)


def _with_quantity(line: Line, quantity: Decimal, unit: str | None, catalog: CatalogIndex) -> Line:
    """The draft line with a new quantity (converted to the catalogue unit when a unit is given)."""
    item = catalog.get(line.sku) if line.sku else None
    if item is not None:
        return _line_for_item(item, quantity, unit, max(line.confidence, 0.9))
    return dataclasses.replace(line, quantity=tidy(quantity), unit=unit or line.unit)


def _replaced(line: Line, item: CatalogItem) -> Line:
    """The draft line pointing at another item, its quantity carried over (converted when exact)."""
    unit = None if line.unit == UNSPECIFIED_UNIT else normalize_unit(line.unit, standalone=False) or line.unit
    return _line_for_item(item, line.quantity, unit, 1.0)


def _quantity_in(toks: list[str], catalog: CatalogIndex) -> _Qty | None:
    return _choose([q for q in _quantities(toks, catalog) if toks[q.start] not in ("a", "an")])


def _strip_cue(toks: list[str], cues: tuple[tuple[str, ...], ...]) -> list[str] | None:
    for cue in cues:
        if tuple(toks[: len(cue)]) == cue:
            return toks[len(cue) :]
    return None


def _edit_remove(toks: list[str], draft: list[Line], catalog: CatalogIndex) -> list[Edit] | None:
    ref = _strip_cue(toks, _REMOVE_CUES)
    if ref is None:
        # "the pens are not needed", "toner cancelled"
        tail = " ".join(toks)
        m = re.match(r"(.+?)\s+(?:is\s+|are\s+)?(?:not\s+needed|no\s+longer\s+needed|cancelled|canceled)$", tail)
        if not m:
            return None
        ref = m.group(1).split()
    while ref and ref[-1] in _REMOVE_TAIL:
        ref = ref[:-1]
    if not ref:
        return None
    index = _line_index(ref, draft, catalog)
    return None if index is None else [Edit("remove", index=index)]


def _edit_quantity(toks: list[str], draft: list[Line], catalog: CatalogIndex, soft: bool) -> list[Edit] | None:
    words = list(toks)
    cue = bool(words) and words[0] in _SET_CUES
    be = bool({"should", "=", "iwe", "ziwe", "kuwa"} & set(words))  # "paper should be 30", "cement iwe 50"
    delta = 0
    if cue and "by" in words[1:]:
        delta = {"reduce": -1, "decrease": -1, "cut": -1, "lower": -1, "increase": 1, "raise": 1, "bump": 1}.get(words[0], 0)
        if delta:
            words = [w for w in words if w != "by"]
    if cue:
        words = words[1:]
        if words[:1] == ["up"]:
            words = words[1:]
    old: Decimal | None = None
    # "15 not 12 for the gloves", "gloves 15 instead of 12": the number after "not" is the one replaced
    for k in range(1, len(words) - 1):
        swap = 2 if words[k : k + 2] == ["instead", "of"] else (1 if words[k] in ("not", "si", "sio") else 0)
        replaced = _number_at(words, k + swap) if swap else None
        if replaced is None or not any(_number_at(words, j) for j in range(k)):
            continue
        # "15 not 12", "ni kumi na tano si kumi": the amount after "not" is the one replaced; "32.5 not 42.5"
        # where 42.5 is in the item's name chooses a variant (left to the item edits)
        if any(
            words[k + swap] in _named_numbers(catalog).get(singular(t), ())
            for ln in draft
            if ln.sku
            for t in tokens(ln.description)
        ) and not any(ln.quantity == replaced[0] for ln in draft):
            return None
        old = replaced[0]
        words = words[:k] + words[k + swap + replaced[1] :]
        break
    # "paper 30 not 20", "30 not 20"
    if old is None and (len(words) >= 2 and words[-2] in ("not", "instead")) or words[-3:-1] == ["instead", "of"]:
        num = _number_at(words, len(words) - 1)
        if num is not None:
            old = num[0]
            words = words[:-3] if words[-3:-1] == ["instead", "of"] else words[:-2]
    if not (cue or be or soft or old is not None) or not words:
        return None
    if words[-1:] == ["more"] or words[:1] == ["more"]:
        return None  # "make it 3 more" is an increment, left to the LLM
    qty = _quantity_in(words, catalog)
    if qty is None:
        return None
    ref = [t for t in words[: qty.start] + words[qty.end :] if t not in _SET_FILLERS]
    if ref:
        index = _line_index(ref, draft, catalog)
    elif old is not None:
        same = [i for i, ln in enumerate(draft) if ln.quantity == old]
        index = same[0] if len(same) == 1 else (0 if len(draft) == 1 else None)
    else:
        index = 0 if len(draft) == 1 else None
    if index is None:
        return None
    unit = qty.unit
    sku = draft[index].sku
    item = catalog.get(sku) if sku else None
    if item is not None and unit is not None and _names_a_variant(item, qty.value, unit, catalog):
        return None  # "make the water 1.5L", "bleach 20 litres not 5": a size of another variant, not an amount
    if unit is None and item is not None and old is None:
        # "make it 20 markers" counts pieces; "15 masks not 10" keeps the unit the 10 was in
        unit = _counted_unit(item, qty.value, words[qty.end :])
    if delta:
        # "reduce the masks by 2", "increase paper by 5": relative to what the line holds
        step = _with_quantity(draft[index], qty.value, unit, catalog)
        if step.unit != draft[index].unit:
            return None
        value = draft[index].quantity + (step.quantity if delta > 0 else -step.quantity)
        if value <= 0:
            return None
        return [Edit("set_quantity", index=index, line=dataclasses.replace(draft[index], quantity=tidy(value)))]
    line = _with_quantity(draft[index], qty.value, unit, catalog)
    return [Edit("set_quantity", index=index, line=line)]


def _names_a_variant(item: CatalogItem, value: Decimal, unit: str, catalog: CatalogIndex) -> bool:
    """Whether ``value unit`` is the size of a variant of ``item`` (another item of the same product)."""
    asked = text_attributes(f"{value.normalize():f}{unit}")
    if not asked.measures:
        return False
    product = [t for t in tokens(item.name) if not has_digit(t)]
    for other, _ in catalog.search(" ".join([f"{value.normalize():f}{unit}", *product]), 8):
        if other.sku != item.sku and _siblings(item, other) and agreements(asked, item_attributes(other)):
            return not agreements(asked, item_attributes(item))
    return False


def _edit_answer(toks: list[str], draft: list[Line], catalog: CatalogIndex, bare: bool) -> list[Edit] | None:
    """A quantity stated for a line of the draft.

    "4 bleach, 6 mops" (the answer to "how many?"), "cement 45"; or, when ``bare`` (the message is only a
    quantity: "7 tons", "30"), for the draft's only line or its one line waiting for a quantity. The caller
    rules out messages that add ("also 4 bleach").
    """
    qty = _quantity_in(toks, catalog)
    if qty is None:
        return None
    ref = [t for t in toks[: qty.start] + toks[qty.end :] if t not in ("please", "pls", "of")]
    waiting = [i for i, ln in enumerate(draft) if ln.sku and ln.unit_price is None]
    if ref and bare and len(waiting) == 1 and not any(t in catalog.vocabulary for t in ref):
        ref = []  # "1 pack is fine", "3 boxes then": the answer to the one open amount, words around it aside
    if ref:
        if qty.start != 0 and qty.end != len(toks):
            return None
        index = _line_index(ref, draft, catalog)
        if index is None or draft[index].sku is None:
            return None
    elif bare:
        index = 0 if len(draft) == 1 else (waiting[0] if len(waiting) == 1 else None)
    else:
        return None
    if index is None:
        return None
    return [Edit("set_quantity", index=index, line=_with_quantity(draft[index], qty.value, qty.unit, catalog))]


def _edit_add(toks: list[str], draft: list[Line], catalog: CatalogIndex, inherited: bool) -> list[Edit] | None:
    rest = _strip_cue(toks, _ADD_CUES)
    more = False
    if rest is None:
        # "2 more boxes of paper": "more" after an amount adds to the item named ("make it 3 more" is left alone)
        more = "more" in toks and toks[0] not in _SET_CUES and _quantity_in(toks, catalog) is not None
        if not inherited and not more:
            return None
        rest = [t for t in toks if t != "more"]
    edits = []
    for seg in _split_and(_spec_numbers(_strip_fillers(rest)), catalog):
        for piece in _split_quantities(seg, catalog):
            parsed = _parse_item(piece, catalog)
            if parsed is None or parsed.line is None or (more and not (parsed.line.sku or parsed.line.candidates)):
                return None
            edits.append(_added(parsed.line, draft, catalog))
    return edits or None


def _added(new: Line, draft: list[Line], catalog: CatalogIndex) -> Edit:
    """An added line, or more of an item already in the draft raising that line.

    "add 10 more bags of cement" to 20 bags makes 30; when the words fit several items and one of them is
    already in the draft ("ongeza mifuko 10 ya cement" with the 42.5 cement there), it is that line.
    """
    sku = new.sku
    if sku is None and new.candidates:
        present = [c for c in new.candidates if any(line.sku == c for line in draft)]
        sku = present[0] if len(present) == 1 else None
    for i, line in enumerate(draft):
        if sku and line.sku == sku and line.unit_price is not None:
            item = catalog.get(sku)
            more = new
            if new.sku is None and item is not None:
                unit = None if new.unit == UNSPECIFIED_UNIT else new.unit
                more = _line_for_item(item, new.quantity, unit, line.confidence)
            if more.unit != line.unit or more.unit_price is None:
                break
            total = dataclasses.replace(line, quantity=tidy(line.quantity + more.quantity))
            return Edit("set_quantity", index=i, line=total)
    return Edit("add", line=new)


def _edit_back(toks: list[str], catalog: CatalogIndex) -> list[Edit] | None:
    """A removed item added again ("put the bleach back"): one unless a quantity is given."""
    m = _BACK_RE.match(" ".join(toks))
    if not m:
        return None
    words = _strip_fillers((m.group("a") or m.group("b")).split())
    parsed = _parse_item(words, catalog) if words else None
    if parsed is None or parsed.line is None or parsed.line.sku is None:
        return None
    return [Edit("add", line=parsed.line)]


def _edit_count_of_added(toks: list[str], edits: list[Edit], catalog: CatalogIndex) -> list[Edit] | None:
    """A count right after an addition ("4 of them") sets the added line's quantity."""
    if not edits or edits[-1].op != "add" or edits[-1].line is None or edits[-1].line.sku is None:
        return None
    qty = _quantity_in(toks, catalog)
    if qty is None or not all(t in _REF_PRONOUNS or t in ("of", "please", "pls") for t in toks[qty.end :]):
        return None
    if qty.start != 0:
        return None
    item = catalog.get(edits[-1].line.sku)
    if item is None:
        return None
    return [Edit("add", line=_line_for_item(item, qty.value, qty.unit, 1.0))]


def _edit_replace(toks: list[str], draft: list[Line], catalog: CatalogIndex, soft: bool) -> list[Edit] | None:
    words = list(toks)
    # "change the toner to 26x", "replace paper with a3 paper", "26x not 26a", "swap the 26a for 26x"
    ref: list[str] | None = None
    target = words
    text = " ".join(words)
    if words[:1] and words[0] in ("make", "change", "switch") and not {"to", "with", "for", "into"} & set(words):
        # "make the paper A3": the words naming a line, then what differs; the rest of the item stays
        for cut in range(len(words) - 1, 1, -1):
            index = _line_index(words[1:cut], draft, catalog)
            new_words = [t for t in words[cut:] if t not in _NOISE]
            if index is None or not new_words:
                continue
            old_item = catalog.get(draft[index].sku or "")
            sibling = _sibling_for(old_item, new_words, catalog) if old_item is not None else None
            if sibling is not None and _quantity_in(new_words, catalog) is not None:
                sibling = sibling if _attribute_choice(" ".join(new_words), sibling) else None  # "make the water 1.5L"
            if sibling is not None:
                return [Edit("replace_item", index=index, line=_replaced(draft[index], sibling))]
    for pattern in (
        r"^(?:change|switch|swap|replace|make)\s+(?P<ref>.+?)\s+(?:to|with|for|into)\s+(?P<new>.+)$",
        r"^(?P<new>.+?)\s+(?:not|instead\s+of|in\s+place\s+of)\s+(?P<ref>.+)$",
        # "make it black pens", "change that to the 26x"
        r"^(?:change|switch|make)\s+(?P<ref>it|that|this|them|those)\s+(?P<new>.+)$",
        # "the gloves should be large"
        r"^(?P<ref>.+?)\s+(?:should|must)\s+be\s+(?:the\s+)?(?P<new>.+)$",
        # "instead of water get juice"
        r"^instead\s+of\s+(?P<ref>.+?)\s+(?:get|send|buy|order|bring|use|take|we\s+need|need)\s+(?P<new>.+)$",
    ):
        m = re.match(pattern, text)
        if m:
            ref, target = m.group("ref").split(), m.group("new").split()
            break
    target = [t for t in target if t not in _NOISE]
    if not target:
        return None
    query = " ".join(target)
    if ref is None:
        # An answer to "which one?" may name a size ("the 13kg", "the 20 litre jerrycans"): chosen by attributes;
        # or its place in the list offered ("the first one", "option 2", "ya pili").
        for i, line in enumerate(draft):
            if line.candidates and line.sku is None:
                place = _ordinal(words)
                if place is not None and place < len(line.candidates):
                    item = catalog.get(line.candidates[place])
                    if item is not None:
                        return [Edit("replace_item", index=i, line=_replaced(line, item))]
                choice = _choose_among(query, _line_items(line, catalog), context=line.description)
                if choice is not None and (_quantity_in(target, catalog) is None or _attribute_choice(query, choice)):
                    return [Edit("replace_item", index=i, line=_replaced(line, choice))]
                break
    if ref is None and soft:
        # "sorry no, the 25kg one": a size or grade naming a variant of exactly one line's item
        swaps = []
        for i, line in enumerate(draft):
            old_item = catalog.get(line.sku) if line.sku else None
            sibling = _sibling_for(old_item, target, catalog) if old_item is not None else None
            if sibling is not None and _attribute_choice(query, sibling):
                swaps.append((i, sibling))
        if len(swaps) == 1:
            i, sibling = swaps[0]
            return [Edit("replace_item", index=i, line=_replaced(draft[i], sibling))]
    if _quantity_in(target, catalog) is not None and (ref is None or all(t in _REF_PRONOUNS for t in ref)):
        return None  # "5 a3 paper" asks for something; it does not choose
    if ref is not None and all(t in _REF_PRONOUNS for t in ref) and len(draft) > 1:
        ref, soft = None, True  # "make it black pens" with several lines: the line the new item varies
    if ref is not None:
        index = _line_index(ref, draft, catalog)
        if index is None:
            return None
        line = draft[index]
        choice = _choose_among(query, _line_items(line, catalog))
        old_item = catalog.get(line.sku) if line.sku else None
        if choice is None and old_item is not None:
            choice = _sibling_for(old_item, target, catalog)  # "the 32.5 not 42.5": a variant of the item
        if choice is None:
            found = catalog.match(query)
            choice = found.item if found.status == "match" else None
            if choice is None and found.status == "ambiguous" and not _quantity_in(target, catalog):
                # "replace the water with soda": another product, several fit: that line asks which
                other = Line(description=query, quantity=line.quantity, unit=UNSPECIFIED_UNIT if line.sku else line.unit,
                             confidence=0.4, candidates=found.skus)  # fmt: skip
                return [Edit("replace_item", index=index, line=other)]
        if choice is None or choice.sku == line.sku:
            return None
        return [Edit("replace_item", index=index, line=_replaced(line, choice))]
    # A bare choice: among the candidates of an ambiguous line first.
    for i, line in enumerate(draft):
        if line.candidates and line.sku is None:
            choice = _choose_among(query, _line_items(line, catalog))
            if choice is not None:
                return [Edit("replace_item", index=i, line=_replaced(line, choice))]
    # Else a sibling of a line's item ("26x" when the draft has the 26A), when the message says it corrects
    # ("instead", "I meant") or names only a product code: "a3 paper" alone may be an addition.
    if not soft and not all(is_code(t) for t in target):
        return None
    found = catalog.match(query)
    if found.status != "match" or found.item is None:
        return None
    new = found.item
    if any(line.sku == new.sku for line in draft):
        return None
    siblings = [
        i
        for i, line in enumerate(draft)
        if line.sku and (old := catalog.get(line.sku)) is not None and _siblings(old, new)
    ]
    if len(siblings) != 1:
        return None
    i = siblings[0]
    return [Edit("replace_item", index=i, line=_replaced(draft[i], new))]


_ORDINALS = {
    "first": 0, "1st": 0, "kwanza": 0, "second": 1, "2nd": 1, "pili": 1, "third": 2, "3rd": 2, "tatu": 2,
    "fourth": 3, "4th": 3, "nne": 3, "fifth": 4, "5th": 4, "tano": 4,
}  # fmt: skip
_ORDINAL_FILLER = frozenset(
    {"the", "one", "ones", "ya", "la", "cha", "option", "number", "no", "item", "choice", "pick", "please", "pls"}
)


def _ordinal(words: list[str]) -> int | None:
    """A place in the list offered, from words such as "the first one", "option 2", "ya pili"; else ``None``."""
    rest = [w for w in words if w not in _ORDINAL_FILLER]
    if len(rest) != 1:
        return None
    word = rest[0]
    if word in _ORDINALS:
        return _ORDINALS[word]
    if word.isdigit() and any(w in ("option", "number", "no", "choice", "item") for w in words):
        return int(word) - 1 if int(word) >= 1 else None
    return None
