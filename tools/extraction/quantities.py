"""Tokens and amounts: fillers dropped, counts and units read, numbers that belong to item names kept."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal

from tools.catalog import CatalogIndex, singular, tokens
from tools.catalog.text import has_digit
from tools.extraction.lexicon import (
    _FILLER_PHRASES,
    _GLUED_RE,
    _MARKERS,
    _MEASURE_UNITS,
    _MODEL_WORDS,
    _NOT_A_COUNT,
    _NUM_RE,
    _SPEC_WORDS,
    _SPLIT_WORDS,
    _TOKEN_RE,
    _X_NUM_RE,
    OF_WORDS,
)
from tools.extraction.numbers import EN_FRACTIONS, ONES, SWAHILI_WORDS, TENS, number_word
from tools.extraction.units import normalize_unit

# A phone number: a leading 0 or a +country code, then 9 digits in groups ("0712 345 678", "+254 712 345678").
_PHONE_RE = re.compile(r"(?<![\w.])(?:\+\d{3}\s?|0)\d{3}[\s-]?\d{3}[\s-]?\d{3}(?![\w.])")
_CONTRACTIONS = {"re": "are", "ve": "have"}
_CONTRACTION_RE = re.compile(r"(?<=[a-z])'(re|ve)\b")


def _prepare(text: str) -> str:
    """Lower-case and unify punctuation that matters: bullets, multiplication signs, thousands separators."""
    s = _PHONE_RE.sub(" ", text.lower())  # "my no is 0712 345 678" counts nothing
    s = s.replace("\u2019", "'").replace("\u00d7", " x ").replace("&", " and ").replace("+", " and ")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 -> 1000
    s = s.replace("\u2022", "\n- ").replace("\u2013", " - ").replace("\u2014", " - ")
    return _CONTRACTION_RE.sub(lambda m: " " + _CONTRACTIONS[m.group(1)], s)  # "we're 25 on site": we are


def _tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _strip_fillers(toks: list[str]) -> list[str]:
    """Drop filler phrases anywhere in the token list (longest phrases first)."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        for phrase in _FILLER_PHRASES:
            n = len(phrase)
            if tuple(toks[i : i + n]) == phrase:
                # "x" is a filler ("2 x staplers") unless a number follows ("staplers x 2")
                if phrase == ("x",) and i + 1 < len(toks) and _number_at(toks, i + 1) is not None:
                    continue
                i += n
                break
        else:
            out.append(toks[i])
            i += 1
    return out


_number_word = number_word


def _number_at(toks: list[str], i: int) -> tuple[Decimal, int] | None:
    """Parse a count at ``toks[i]``: (value, tokens used), or ``None``.

    Digits (``20``, ``2.5``), number words (``twenty five``, ``a hundred``), ``a``/``an`` (1),
    ``a couple of`` / ``a pair of`` (2), ``half a`` (0.5, as in ``half a dozen``), Swahili ``moja``..``kumi``,
    ``kumi na mbili``. A following ``dozen`` is read as a unit by the caller.
    """
    if i >= len(toks):
        return None
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < len(toks) else ""
    if _NUM_RE.fullmatch(t):
        if nxt == "and" and toks[i + 2 : i + 3] == ["a"] and toks[i + 3 : i + 4] and toks[i + 3] in EN_FRACTIONS:
            return Decimal(t) + EN_FRACTIONS[toks[i + 3]], 4  # "2 and a half"
        return Decimal(t), 1
    if t in ("a", "an") and nxt == "half" and toks[i + 2 : i + 3] == ["dozen"]:
        return Decimal("0.5"), 2  # "a half dozen"
    if t in ("a", "an", "one") and nxt in ("couple", "pair"):
        return Decimal(2), 3 if toks[i + 2 : i + 3] == ["of"] else 2
    if t in ("couple", "pair"):
        return Decimal(2), 2 if nxt == "of" else 1
    if t == "half" and nxt in ("a", "an") and toks[i + 2 : i + 3] == ["dozen"]:
        return Decimal("0.5"), 2
    if t == "half" and nxt == "dozen":
        return Decimal("0.5"), 1
    if t == "half" and nxt in ("a", "an") and normalize_unit(toks[i + 2] if i + 2 < len(toks) else "") is not None:
        return Decimal("0.5"), 2  # "half a bag": the unit is read by the caller
    if t in ("a", "an") and nxt in ("hundred", "thousand"):
        words = _number_word(toks, i + 1)
        return None if words is None else (words[0], words[1] + 1)
    if t in ("a", "an"):
        if not nxt or nxt in _NOT_A_COUNT or _NUM_RE.fullmatch(nxt):
            return None
        return Decimal(1), 1
    return _number_word(toks, i)


def _is_protected(toks: list[str], i: int, catalog: CatalogIndex) -> bool:
    """A number that belongs to the item's description rather than counting it.

    After a word such as "size" or "gauge", before a unit of a specification ("4 inch"), or after a word of an
    item whose name carries that number as a grade or model ("cement 42.5" for ``CEMENT OPC 42.5N``, "epson 664"
    for ``INK EPSON 664 BLACK``): the catalogue itself says which numbers are part of names.
    """
    if i > 0 and toks[i - 1] in _MODEL_WORDS:
        return True
    if i + 1 < len(toks) and toks[i + 1] in _SPEC_WORDS:
        return True
    following = toks[i + 1] if i + 1 < len(toks) else ""
    if "." in toks[i] and following and toks[i] in _named_numbers(catalog).get(singular(following), ()):
        return True  # "32.5 cement": a decimal before a word whose items carry it is their grade, not a count
    swahili_next = i + 2 < len(toks) and toks[i + 2] in SWAHILI_WORDS  # "42.5 mifuko kumi": the unit counts "kumi"
    if i == 0 or (following and normalize_unit(following, standalone=False) is not None and not swahili_next):
        return False  # "cement 40 bags": a unit after the number makes it an amount
    if normalize_unit(toks[i - 1], standalone=False) is not None:
        return False  # "boxes 3", "mifuko kumi": a unit before the number (Swahili order) counts it
    return toks[i] in _named_numbers(catalog).get(singular(toks[i - 1]), ())


_NAMED_NUMBERS: dict[int, tuple[CatalogIndex, dict[str, frozenset[str]]]] = {}


def _named_numbers(catalog: CatalogIndex) -> dict[str, frozenset[str]]:
    """For each word of the item names, the numbers that start a grade or model token in the same names."""
    cached = _NAMED_NUMBERS.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    found: dict[str, set[str]] = {}
    for item in catalog.items:
        toks = tokens(item.name)
        numbers = {n for k in range(len(toks)) if (n := _name_number(toks, k))}
        for t in toks:
            if not has_digit(t):
                found.setdefault(singular(t), set()).update(numbers)
    table = {w: frozenset(n) for w, n in found.items()}
    if len(_NAMED_NUMBERS) > 8:
        _NAMED_NUMBERS.clear()
    _NAMED_NUMBERS[id(catalog)] = (catalog, table)
    return table


def _name_number(toks: list[str], k: int) -> str | None:
    """The number a name token carries as a grade or model ("42.5n" -> "42.5", "GAUGE 28" -> "28"), else ``None``.

    Sizes ("50kg", "3m") and pack counts ("BOX 50", "100 SHEETS") are amounts, not names, and give ``None``.
    """
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z][a-z0-9]*)?", toks[k])
    if m is None:
        return None
    if m.group(2):
        return None if normalize_unit(m.group(2), standalone=False) is not None else m.group(1)
    neighbours = [toks[j] for j in (k - 1, k + 1) if 0 <= j < len(toks)]
    return None if any(normalize_unit(t, standalone=False) is not None for t in neighbours) else m.group(1)


@dataclass(slots=True)
class _Qty:
    """A quantity found in a segment: token span, value, unit (canonical or ``None``) and priority."""

    start: int
    end: int
    value: Decimal
    unit: str | None
    kind: int  # 0 marker (x2, qty 3), 1 leading, 2 followed by a unit, 3 trailing, 4 elsewhere, 5 item size
    unit_index: int | None = None  # index of a stand-alone unit word (the alternative reading keeps it)


def _quantities(toks: list[str], catalog: CatalogIndex) -> list[_Qty]:
    """Every quantity reading in a segment, in token order."""
    found: list[_Qty] = []
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        # "x2", "2x" (unless a product code such as "26x")
        m = _X_NUM_RE.fullmatch(t)
        if m:
            found.append(_Qty(i, i + 1, Decimal(m.group(1)), None, 0))
            i += 1
            continue
        m = _GLUED_RE.fullmatch(t)
        if m and not catalog.is_known_code(t):
            value, suffix = Decimal(m.group(1)), m.group(2)
            if suffix == "x":
                q = _Qty(i, i + 1, value, None, 0)
                _take_unit(toks, q)
                found.append(q)
                i = q.end
                continue
            unit = normalize_unit(suffix, standalone=False)
            if unit is not None:
                end = i + 2 if toks[i + 1 : i + 2] and toks[i + 1] in OF_WORDS else i + 1
                found.append(_Qty(i, end, value, unit, 1 if i == 0 else 2))
                i = end
                continue
        elif m and normalize_unit(m.group(2), standalone=False) in _MEASURE_UNITS:
            # "2kg chai", "sugar 2kg": a size that is also in an item's name ("Sugar 2 kg") is the amount
            # asked for only when the segment has no other quantity ("20 packets of milk 500ml").
            end = i + 2 if toks[i + 1 : i + 2] == ["of"] else i + 1
            found.append(_Qty(i, end, Decimal(m.group(1)), normalize_unit(m.group(2), standalone=False), 5))
            i = end
            continue
        if t in _MARKERS:
            j = i + 1
            num = _number_at(toks, j)
            if num is not None:
                q = _Qty(i, j + num[1], num[0], None, 0)
                _take_unit(toks, q)
                found.append(q)
                i = q.end
                continue
        num = _number_at(toks, i)
        if num is not None and not (_NUM_RE.fullmatch(t) and _is_protected(toks, i, catalog)):
            q = _Qty(i, i + num[1], num[0], None, 4)
            if toks[q.end : q.end + 1] == ["x"]:
                q.end += 1
                q.kind = 0
            _take_unit(toks, q)
            if q.kind != 0:
                if i == 0:
                    q.kind = 1
                elif q.unit is not None:
                    q.kind = 2
                elif q.end == n:
                    q.kind = 3
            found.append(q)
            i = max(q.end, i + 1)
            continue
        i += 1
    return found


def _take_unit(toks: list[str], q: _Qty) -> None:
    """Extend a quantity over a following unit word and ``of`` (``20 boxes of``, ``24 m``).

    Also takes a unit word just before the number (Swahili order: ``mifuko kumi``, "bags ten").
    """
    before = normalize_unit(toks[q.start - 1]) if q.start > 0 else None
    if before is not None and toks[q.start] in SWAHILI_WORDS:
        # Swahili counts follow their noun: "mifuko mitatu ya kilo hamsini" is 3 bags (of 50 kg), not 3 kg
        q.unit, q.unit_index, q.start = before, q.start - 1, q.start - 1
        return
    # Right after a number even one-letter spellings are units ("20 l", "24 m").
    unit = normalize_unit(toks[q.end], standalone=False) if q.end < len(toks) else None
    if unit is None and toks[q.end : q.end + 1] == ["no"]:
        unit = "piece"  # "1 no. stapler": Kenyan/British "number of" pieces
    if unit is not None:
        q.unit = unit
        q.unit_index = q.end
        q.end += 1
    if q.end < len(toks) and toks[q.end] in OF_WORDS:
        q.end += 1
    if q.unit is None and q.start > 0 and (before := normalize_unit(toks[q.start - 1])) is not None:
        q.unit = before
        q.unit_index = q.start - 1
        q.start -= 1


def _choose(qtys: list[_Qty]) -> _Qty | None:
    return min(qtys, key=lambda q: (q.kind, q.start)) if qtys else None


def _starts_item(toks: list[str], i: int, catalog: CatalogIndex) -> bool:
    """Whether a new item can begin at ``toks[i]`` with a quantity (for lists without separators)."""
    t = toks[i]
    if i > 0 and toks[i - 1] in _MARKERS:
        return False
    if _X_NUM_RE.fullmatch(t):
        return False  # "x2" closes the item before it
    if _NUM_RE.fullmatch(t):
        return not _is_protected(toks, i, catalog)
    m = _GLUED_RE.fullmatch(t)
    if m and not catalog.is_known_code(t):
        return m.group(2) == "x" or normalize_unit(m.group(2), standalone=False) is not None
    return t in ONES or t in TENS or t in SWAHILI_WORDS and t != "na"


def _is_item_word(t: str) -> bool:
    return (
        normalize_unit(t) is None
        and _number_at([t], 0) is None
        and not _NUM_RE.fullmatch(t)
        and not _X_NUM_RE.fullmatch(t)
        and t not in ("of", "x")
    )


def _split_quantities(toks: list[str], catalog: CatalogIndex) -> list[list[str]]:
    """Split ``20 boxes a4 paper 5 toner hp 26a`` before the second quantity."""
    parts: list[list[str]] = []
    start = 0
    seen_qty = seen_word = False
    i = 0
    while i < len(toks):
        t = toks[i]
        if (
            i > start
            and seen_qty
            and seen_word
            and _starts_item(toks, i, catalog)
            and any(_is_item_word(u) for u in toks[i + 1 :])
        ):
            parts.append(toks[start:i])
            start = i
            seen_qty = seen_word = False
        if _starts_item(toks, i, catalog) or _X_NUM_RE.fullmatch(t) or (i > 0 and toks[i - 1] in _MARKERS):
            seen_qty = True
            num = _number_at(toks, i)
            i += max(1, num[1] if num else 1)  # skip the rest of "kumi na mbili", "twenty five"
            continue
        if _is_item_word(t) and t not in _MARKERS:
            seen_word = True
        i += 1
    parts.append(toks[start:])
    return [p for p in parts if p]


def _item_words(toks: list[str], catalog: CatalogIndex) -> tuple[_Qty | None, list[str]]:
    """The segment's quantity and the words left to name the item."""
    qty = _choose(_marker_sizes(_quantities(toks, catalog)))
    rest = toks if qty is None else toks[: qty.start] + toks[qty.end :]
    rest = _sizes_glued(rest, catalog) if qty is not None else rest
    return qty, [t for t in rest if t not in OF_WORDS and t != "x" and not _X_NUM_RE.fullmatch(t)]


def _marker_sizes(qtys: list[_Qty]) -> list[_Qty]:
    """Markers after a measure count items of that size: "20 litres x 3" is 3 (no unit), not 3 litres."""
    out = []
    for q in qtys:
        at = q.unit_index
        if q.kind == 0 and q.unit in _SIZE_SUFFIX and at is not None:
            if any(o is not q and o.unit_index == at and o.start < q.start for o in qtys):
                q = dataclasses.replace(q, start=at + 1, unit=None, unit_index=None)
        out.append(q)
    return out


_SIZE_SUFFIX = {"kg": "kg", "g": "g", "ton": "t", "litre": "l", "ml": "ml", "m": "m", "cm": "cm", "mm": "mm"}


def _sizes_glued(toks: list[str], catalog: CatalogIndex) -> list[str]:
    """Other amounts in the item's words written as sizes: "kilo hamsini" -> "50kg", "lita ishirini" -> "20l".

    Once the count is taken ("mifuko mitatu"), a measure left in the words describes the item (its size).
    """
    out = list(toks)
    for q in sorted(_quantities(toks, catalog), key=lambda q: -q.start):
        if q.unit in _SIZE_SUFFIX and q.unit_index is not None:
            out[q.start : q.end] = [f"{q.value.normalize():f}{_SIZE_SUFFIX[q.unit]}"]
    return out


def _item_query(toks: list[str], catalog: CatalogIndex) -> str:
    return " ".join(_item_words(toks, catalog)[1])


def _spec_numbers(toks: list[str]) -> list[str]:
    """Number words that state a specification become digits: "four inch nails" -> "4 inch nails"."""
    out = list(toks)
    for i, t in enumerate(toks[:-1]):
        if toks[i + 1] in _SPEC_WORDS and (t in ONES or t in TENS):
            out[i] = str(ONES.get(t) or TENS[t])
    return out


def _names_one(left: list[str], right: list[str], catalog: CatalogIndex) -> bool:
    """Whether the words joined by "and" name one item surely, better than either side alone."""
    joined = catalog.match(" and ".join([_item_query(left, catalog), " ".join(right)]))  # the right's size kept
    if joined.status != "match":
        return False
    alone = max(catalog.match(_item_query(left, catalog)).score, catalog.match(_item_query(right, catalog)).score)
    return joined.score > alone


def _split_and(toks: list[str], catalog: CatalogIndex) -> list[list[str]]:
    """Split on "and"/"plus", unless the words joined name one item better ("twin and earth")."""
    pieces: list[list[str]] = [[]]
    for k, t in enumerate(toks):
        # Swahili "na" (and), except inside a number ("kumi na mbili" = 12)
        swahili_and = t == "na" and not (
            k > 0 and toks[k - 1] in SWAHILI_WORDS and k + 1 < len(toks) and toks[k + 1] in SWAHILI_WORDS
        )
        # "one hundred and fifty" is one number
        in_number = k > 0 and toks[k - 1] in ("hundred", "thousand") and _number_word(toks, k + 1) is not None
        # "one and a half tonnes", "2 and a half bags": a fraction of the number before
        in_number = in_number or (
            k > 0
            and _number_at(toks, k - 1) is not None
            and toks[k + 1 : k + 2] == ["a"]
            and toks[k + 2 : k + 3] != []
            and toks[k + 2] in EN_FRACTIONS
        )
        if (t in _SPLIT_WORDS and not in_number) or swahili_and:
            pieces.append([])
        else:
            pieces[-1].append(t)
    pieces = [p for p in pieces if p]
    if not pieces:
        return []
    out = [pieces[0]]
    for piece in pieces[1:]:
        left = out[-1]
        both_counted = _item_words(left, catalog)[0] is not None and _item_words(piece, catalog)[0] is not None
        if both_counted and _number_at(piece, 0) is None and _names_one(left, piece, catalog):
            out[-1] = [*left, "and", *piece]  # "250m of twin and earth 2.5mm": the 2.5 mm is the cable's size
            continue
        if _number_at(piece, 0) is not None or _starts_item(piece, 0, catalog) or both_counted:
            out.append(piece)  # "mchanga tani sita na cement mifuko thelathini": each side has its own amount
            continue
        lq, rq = _item_query(left, catalog), _item_query(piece, catalog)
        joined = catalog.match(" and ".join([lq, rq]))
        lm, rm = catalog.match(lq), catalog.match(rq)
        if joined.status == "match" and joined.score >= max(lm.score, rm.score):
            out[-1] = [*left, "and", *piece]
        elif lm.status != "none" and rm.status != "none":
            out.append(piece)
        else:
            out[-1] = [*left, "and", *piece]
    return out
