"""Item attributes read from an item-master name (or a person's words): product words, sizes, colours, grades, pack.

Everything is read with a grammar of general language only: numbers, measure units, containers and ERP UoM
codes, count nouns, colours (English and Swahili). Nothing here knows a product: ``CEMENT OPC 42.5N 50KG BAG``
gives words ``cement, opc``, measure ``50 kg``, grade ``42.5n``, pack ``1 bag``; ``PAPER A4 80GSM WHITE - BOX 5
REAMS`` gives words ``paper``, grade ``a4``, measure ``80 gsm``, colour ``white``, pack ``5 ream per box``.

Pack grammar: ``- PACK 24``, ``PACK OF 24``, ``24 PACK``, ``24PCS``, ``BOX 100``, ``BOX 5 REAMS``, ``50KG BAG``,
``20L JERRYCAN``, ``ROLL 50M``, ``CARTON 12 X 1L``, ``x24``, ``(24)``, ``DOZEN``; the catalogue unit column (any
ERP UoM code) gives the container when it names one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from core.domain import CatalogItem
from tools.catalog.lexicon import (
    COLOURS,
    CONTAINERS,
    COUNT_NOUNS,
    FILLER,
    GLUED_ONLY,
    GRADE_NOUNS,
    MEASURES,
    SIZE_WORDS,
    UOM,
)
from tools.catalog.text import singular

__all__ = [
    "COLOURS", "CONTAINERS", "UOM", "ItemAttributes", "Measure", "Pack", "agreements", "conflicts", "grade_matches",
    "item_attributes", "normalize_uom", "text_attributes",
]  # fmt: skip


# --- public types ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pack:
    """What one catalogue unit holds.

    Attributes:
        count: inner units per catalogue unit (24 for ``PACK 24``, 5 for ``BOX 5 REAMS``, 12 for ``DOZEN``, 1 when
            the name states none).
        inner: the inner unit noun, singular (``ream``, ``bottle``, ``piece``), ``None`` when not stated.
        container: the catalogue unit as a container noun (``pack``, ``box``, ``bag``, ``jerrycan``, ``litre``...).
    """

    count: Decimal
    inner: str | None
    container: str


@dataclass(frozen=True, slots=True)
class Measure:
    """A size stated in a name.

    Attributes:
        value: the number (``500`` for ``500ML``).
        unit: normalised unit (``kg``, ``g``, ``l``, ``ml``, ``m``, ``cm``, ``mm``, ``gsm``, ``oz``, ``w``, ``v``,
            ``inch``...).
    """

    value: Decimal
    unit: str

    @property
    def dimension(self) -> str:
        """What the unit measures (``mass``, ``volume``, ``length``, or the unit itself for the rest)."""
        return MEASURES[self.unit][1]

    @property
    def base(self) -> Decimal:
        """The value in the dimension's base unit (g, ml, mm...), for comparing ``0.5l`` with ``500ml``."""
        return self.value * MEASURES[self.unit][2]


@dataclass(frozen=True, slots=True)
class ItemAttributes:
    """Attributes read from an item name or a description.

    Attributes:
        words: product words, lower-case singular, without numbers, measures, colours or pack words.
        measures: sizes stated (content of one inner unit or one item).
        colours: normalised colours.
        grades: grade and model tokens (``42.5n``, ``15w40``, ``a4``, ``cf226a``, ``26a``, ``m12``, ``42``).
        pack: the pack, or ``None`` (a description that names no container).
    """

    words: tuple[str, ...]
    measures: tuple[Measure, ...]
    colours: frozenset[str]
    grades: frozenset[str]
    pack: Pack | None


# --- lexer ----------------------------------------------------------------------------------------------------

_PAREN_COUNT = re.compile(r"\(\s*(\d+)\s*\)")
# "12x500ml", "6x1l": a count glued to a measure ("26x" alone is a code, "600x600" a dimension).
_GLUED_TIMES = re.compile(r"\b(\d+)\s*x(?=\s*\d+(?:\.\d+)?\s*(?:ml|l|ltr|cl|kg|g|gm)\b)")
_JOIN_CODE = re.compile(r"\b([a-z]{1,4}|\d+[a-z]+)-(\d+[a-z]*)\b")
_LEX = re.compile(r"\d+/\d+|\d+(?:\.\d+)?[a-z]+\d[a-z0-9]*|[a-z]+\d[a-z0-9.]*|\d+(?:\.\d+)?[a-z]*|[a-z]+|\"")
_NUM_SUFFIX = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")


@dataclass(slots=True)
class _Tok:
    kind: str  # word | num | measure | grade | times
    text: str
    num: Decimal | None = None
    measure: Measure | None = None
    used: bool = False


def _measure(value: str, unit: str) -> Measure | None:
    spec = MEASURES.get(unit)
    return Measure(Decimal(value), spec[0]) if spec else None


def _join(m: re.Match[str]) -> str:
    head = m.group(1)
    return m.group(0) if head in UOM or head in MEASURES or head == "x" else head + m.group(2)


def _lex(text: str) -> list[_Tok]:
    s = text.lower().replace("×", " x ").replace(",", " ")
    s = _PAREN_COUNT.sub(r" x\1 ", s)
    s = _GLUED_TIMES.sub(r"\1 x ", s)
    s = _JOIN_CODE.sub(_join, s)
    out: list[_Tok] = []
    for raw in _LEX.findall(s):
        if raw == '"':
            if out and out[-1].kind == "num" and out[-1].num is not None:
                prev = out.pop()
                out.append(_Tok("measure", raw, measure=Measure(prev.num, "inch")))  # type: ignore[arg-type]
            continue
        if re.fullmatch(r"x\d+", raw):
            out += [_Tok("times", "x"), _Tok("num", raw[1:], Decimal(raw[1:]))]
            continue
        m = _NUM_SUFFIX.fullmatch(raw)
        if m:
            value, suffix = m.groups()
            if not suffix:
                out.append(_Tok("num", raw, Decimal(value)))
            elif (ms := _measure(value, suffix)) is not None:
                out.append(_Tok("measure", raw, measure=ms))
            elif suffix in COUNT_NOUNS or suffix in UOM:
                out += [_Tok("num", value, Decimal(value)), _Tok("word", suffix)]
            else:
                out.append(_Tok("grade", raw))
            continue
        if "/" in raw or re.search(r"\d", raw):
            out.append(_Tok("grade", raw))
        elif raw == "x":
            out.append(_Tok("times", raw))
        else:
            out.append(_Tok("word", raw))
    # A measure unit written apart from its number ("500 ML", "50 KG"): one measure token.
    merged: list[_Tok] = []
    for tok in out:
        last = merged[-1] if merged else None
        if (
            tok.kind == "word"
            and last is not None
            and last.kind == "num"
            and tok.text in MEASURES
            and tok.text not in GLUED_ONLY
        ):
            merged[-1] = _Tok("measure", last.text + tok.text, measure=_measure(str(last.num), tok.text))
            continue
        merged.append(tok)
    return merged


# --- parser ---------------------------------------------------------------------------------------------------


def _noun(tok: _Tok | None) -> str | None:
    """The count noun a token names ("reams" -> "ream"), or ``None``."""
    if tok is None or tok.kind != "word" or tok.text not in COUNT_NOUNS:
        return None
    return COUNT_NOUNS[tok.text] or singular(tok.text)


def _container(tok: _Tok | None) -> str | None:
    if tok is None or tok.kind != "word":
        return None
    unit = UOM.get(tok.text)
    return unit if unit in CONTAINERS else None


def _parse(text: str, unit: str | None) -> ItemAttributes:
    toks = _lex(text)
    n = len(toks)
    count: Decimal | None = None
    inner: str | None = None
    named: str | None = None  # container named in the text

    def at(i: int) -> _Tok | None:
        return toks[i] if 0 <= i < n else None

    for i, tok in enumerate(toks):
        if tok.used:
            continue
        box = _container(tok)
        if box is not None:
            j = i + 1
            if (t := at(j)) is not None and t.kind == "word" and t.text == "of":
                j += 1
            num = at(j)
            after = at(j + 1)
            if after is not None and after.kind == "word" and after.text in GRADE_NOUNS:
                num = None  # "SHEET 28 GAUGE": a grade, not a count
            if num is not None and num.kind == "num" and count is None:
                # CONTAINER [OF] N [INNER] [X MEASURE]: "BOX 5 REAMS", "PACK OF 24", "CARTON 12 X 1L"
                count, named = num.num, box
                tok.used = num.used = True
                if (noun := _noun(at(j + 1))) is not None:
                    inner = noun
                    toks[j + 1].used = True
                if (t := at(j + 1)) is not None and t.kind == "times":
                    t.used = True
                if box == "dozen":
                    count, inner = Decimal(12) * (num.num or 1), inner or "piece"
                continue
            prev = at(i - 1)
            if prev is not None and prev.kind == "num" and not prev.used and count is None:
                # N CONTAINER: "24 PACK", "24 PCS", "2 DOZEN"
                count = prev.num
                prev.used = tok.used = True
                if box == "dozen" and count is not None:
                    count, inner = count * 12, "piece"
                elif box == "piece" or _noun(tok) is not None and box not in {"pack", "box", "carton", "bag"}:
                    inner = box
                else:
                    named = box
                continue
            if box == "dozen":
                count, inner, tok.used = Decimal(12), "piece", True
                continue
            # A container word at the end, or next to a measure ("50KG BAG", "20L JERRYCAN", "ROLL 100M").
            nxt = at(i + 1)
            if (
                i == n - 1
                or (prev is not None and prev.kind == "measure")
                or (nxt is not None and nxt.kind == "measure")
            ):
                named, tok.used = box, True
            continue
        if tok.kind == "times":
            nxt, prev = at(i + 1), at(i - 1)
            if nxt is not None and nxt.kind == "num" and count is None:
                count, tok.used, nxt.used = nxt.num, True, True  # "x24"
            elif prev is not None and prev.kind == "num" and not prev.used and count is None:
                count, tok.used, prev.used = prev.num, True, True  # "12 X 1L"
            else:
                tok.used = True
        elif tok.kind == "num" and (nxt := at(i + 1)) is not None and nxt.kind == "measure" and count is None:
            # "12 500ML" is rare; "6 X 1L" is handled above; "24 BOTTLES 500ML": count with its noun
            pass

    words: list[str] = []
    measures: list[Measure] = []
    colours: set[str] = set()
    grades: set[str] = set()
    for i, tok in enumerate(toks):
        if tok.used:
            continue
        if tok.kind == "measure" and tok.measure is not None:
            if tok.measure not in measures:
                measures.append(tok.measure)
        elif tok.kind == "grade":
            grades.add(tok.text)
        elif tok.kind == "num":
            prev, nxt = at(i - 1), at(i + 1)
            if nxt is not None and nxt.kind == "word" and nxt.text in GRADE_NOUNS:
                grades.add(tok.text + nxt.text)  # "28 GAUGE" -> "28gauge"
                nxt.used = True
            elif prev is not None and prev.kind == "word" and prev.text in GRADE_NOUNS:
                grades.add(tok.text + prev.text)  # "GAUGE 28" -> "28gauge", as "28 GAUGE"
            elif prev is not None and prev.kind == "word" and prev.text in SIZE_WORDS:
                grades.add(tok.text)  # "SIZE 42"
            elif "." in tok.text:
                grades.add(tok.text)  # "cement 42.5"
        elif tok.kind == "word":
            if tok.text in COLOURS:
                colours.add(COLOURS[tok.text])
            elif tok.text not in FILLER and tok.text not in SIZE_WORDS:
                words.append(singular(tok.text))
    container = _unit_container(unit, named)
    pack = None
    if container is not None or count is not None:
        pack = Pack(count if count is not None else Decimal(1), inner, container or "piece")
    return ItemAttributes(tuple(words), tuple(measures), frozenset(colours), frozenset(grades), pack)


def _unit_container(unit: str | None, named: str | None) -> str | None:
    """The catalogue unit as a container noun: the UoM column unless it is a bare piece and the name says more."""
    if unit is None:
        return named
    key = unit.strip().lower().rstrip(".")
    norm = UOM.get(key, singular(key) if key.isalpha() else key)
    if norm == "piece" and named is not None:
        return named
    return norm


def normalize_uom(unit: str) -> str:
    """Normalise an ERP unit-of-measure code or spelling (``PCS``, ``EA``, ``PKT``, ``JCN``, ``LTR``...).

    Returns:
        The container or unit noun (``piece``, ``pack``, ``jerrycan``, ``litre``...); an unknown code is
        returned lower-cased and singular.
    """
    key = unit.strip().lower().rstrip(".")
    return UOM.get(key, singular(key))


@lru_cache(maxsize=65536)
def _item_attributes(name: str, unit: str) -> ItemAttributes:
    return _parse(name, unit)


def item_attributes(item: CatalogItem) -> ItemAttributes:
    """Attributes of a catalogue item, read from its name and unit column (cached per name and unit)."""
    return _item_attributes(item.name, item.unit)


@lru_cache(maxsize=8192)
def text_attributes(text: str) -> ItemAttributes:
    """Attributes of a person's description (``"hard hats (yellow)"``, ``"cement 42.5"``), same grammar.

    A bare decimal (``42.5``) counts as a grade; a container with a count (``pack of 24``) is a pack. The
    quantity of a request should be removed first: ``"40 bags"`` reads as a pack of 40.
    """
    return _parse(text, None)


def grade_matches(query: str, item: str) -> bool:
    """Return ``True`` when a grade in the text names a grade of the item.

    Equal; the item's grade ends with it (``26a`` in ``cf226a``); or it is the item's grade without its
    trailing letters (``42.5`` for ``42.5n``, ``26`` for ``26a``).
    """
    if query == item:
        return True
    if len(query) >= 2 and re.search(r"[a-z]", query) and item.endswith(query):
        return True
    return item.startswith(query) and item[len(query) :].isalpha()


def _measure_conflict(query: tuple[Measure, ...], item: tuple[Measure, ...]) -> bool:
    for q in query:
        same_dim = [m for m in item if m.dimension == q.dimension]
        if same_dim and all(m.base != q.base for m in same_dim):
            return True
    return False


def _squared(measure: Measure, item: ItemAttributes) -> bool:
    """Whether a length said ("2.5mm") is the item's cross-section written squared ("2.5MM2" = 2.5 mm²)."""
    return f"{measure.value.normalize():f}{measure.unit}2" in item.grades


def conflicts(query: ItemAttributes, item: ItemAttributes) -> list[str]:
    """Attributes of the text that the item contradicts.

    A missing attribute never contradicts: a text without a colour fits every colour, an item without a
    size fits every size.

    Returns:
        A subset of ``["colour", "measure", "grade"]``, in that order; ``[]`` when compatible.
    """
    out: list[str] = []
    if query.colours and item.colours and not (query.colours & item.colours):
        out.append("colour")
    if _measure_conflict(tuple(q for q in query.measures if not _squared(q, item)), item.measures):
        out.append("measure")
    if query.grades and item.grades and any(not any(grade_matches(q, g) for g in item.grades) for q in query.grades):
        out.append("grade")
    return out


def agreements(query: ItemAttributes, item: ItemAttributes) -> list[str]:
    """Attributes of the text that the item has too (``yellow``, ``42.5``, ``500ml``, ``15w40``).

    Returns:
        One entry per agreeing attribute: ``"colour"``, ``"measure"``, ``"grade"`` (repeated per value), and
        ``"container"`` when the text names the container the item is sold in.
    """
    out = ["colour" for _ in query.colours & item.colours]
    out += ["measure" for q in query.measures if any(m.dimension == q.dimension and m.base == q.base
                                                     for m in item.measures)]  # fmt: skip
    out += ["grade" for q in query.grades if any(grade_matches(q, g) for g in item.grades)]
    out += ["grade" for q in query.measures if _squared(q, item)]
    if query.pack is not None and item.pack is not None and query.pack.container not in ("piece", "dozen"):
        if query.pack.container == item.pack.container:
            out.append("container")  # "detergent jerrycan" -> the item sold by the jerrycan
    return out
