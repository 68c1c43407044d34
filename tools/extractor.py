"""Deterministic request extractor: quantities, units, catalogue items, dates and sites, with no LLM.

This runs before any model (see ``ARCHITECTURE.md``, "Deterministic first"). It reads messages such as
``"pls send 20 boxes a4 paper and 5 toner HP 26A for nairobi site by friday"`` into
:class:`~core.domain.ExtractionResult` lines with a confidence each, reads corrections to a draft
(``"make the paper 30"``, ``"drop the toner"``, ``"the 26X"``) into :class:`Edit` operations, and recognises
read-only catalogue questions (``"price of HP 26X?"``). What it cannot read with confidence it leaves
ambiguous (candidates), low-confidence, or in ``unresolved`` for the LLM or a clarifying question; it never
guesses a unit conversion.

Reading order for a request: site phrases, then date phrases are cut out of the text; the rest is split into
item segments (new lines, bullets, commas, "and", a second quantity); in each segment the quantity (digits,
number words, ``2x``/``x2``/``qty 3``, ``a dozen``) and unit are taken and the remaining words are matched
against the catalogue. Within a message, a self-correction ("fifty bags no wait sixty") keeps the later words,
and a quantity on its own ("toilet paper, need like 10 packs") counts the item named just before it. A count
before a noun of an item whose name states its pack size counts pieces ("100 blue biros" = 2 boxes of 50).
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from dateparser.date import DateDataParser
from rapidfuzz.distance import OSA

from core.domain import CatalogItem, ExtractionResult, Line
from tools.catalog import MATCH_MIN, CatalogIndex, MatchResult, is_code, singular, tokens
from tools.catalog.attributes import (
    ItemAttributes,
    agreements,
    conflicts,
    grade_matches,
    item_attributes,
    text_attributes,
)
from tools.catalog.text import has_digit
from tools.extraction.numbers import ONES, SWAHILI_WORDS, TENS, number_word
from tools.units import catalog_unit, convert, normalize_unit, pack_size, tidy

UNSPECIFIED_UNIT = "unit"
"""``Line.unit`` of an ambiguous line whose candidates differ in unit and whose message named none."""

# -- confidence levels (0..1) --------------------------------------------------------------------------------
AMBIGUOUS_MAX = 0.5
"""Ambiguous lines score at most this (always below the 0.6 "ask" threshold)."""
FREE_TEXT_CONFIDENCE = 0.2
"""An item that matched nothing in the catalogue."""
CHECK_CONFIDENCE = 0.6
"""A single close catalogue candidate: shown for checking in the summary (at the ask threshold, not below)."""
NOT_CONVERTED_MAX = 0.45
"""A matched item whose requested unit could not be converted exactly to the catalogue unit."""
DEFAULT_QUANTITY_FACTOR = 0.8
"""Multiplier when no quantity was given and 1 was assumed."""

# -- vocabulary ---------------------------------------------------------------------------------------------
_ONES, _TENS = ONES, TENS
# "of" between an amount and the item: English, and Swahili noun-class forms ("mifuko kumi ya simenti").
OF_WORDS = frozenset({"of", "ya", "za", "la", "cha", "vya", "wa"})
_NOT_A_COUNT = frozenset({"few", "lot", "lots", "bit", "little", "bunch"})  # "a few" is no count

# Words and phrases that carry no item meaning in a request (greetings, politeness, request verbs).
_FILLER_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in sorted(
        [
            "hi", "hello", "hey", "dear", "habari", "jambo", "good morning", "good afternoon", "good evening",
            "morning", "team", "sir", "madam", "boss", "guys", "all", "pls", "plz", "please", "kindly",
            "tafadhali", "naomba", "tunahitaji", "nahitaji", "tuma", "we need", "i need", "we will need",
            "need", "needed", "we want", "i want", "want", "send", "send us", "us", "get", "get us", "me",
            "order", "buy", "purchase", "procure", "bring", "supply", "provide", "deliver", "can you",
            "could you", "can we", "can i", "would like", "like", "we would like", "we'd like", "i'd like",
            "i would like", "we", "i", "require", "required", "requesting", "request", "for the office",
            "for office", "office use", "for office use", "thanks", "thank you", "thx", "regards",
            "cheers", "asap", "urgent", "urgently", "some", "more", "the", "of", "for", "to",
            "how", "are", "you", "ok", "okay", "hallo", "let", "have", "do", "will", "would", "should",
            "a few", "few", "lots of", "a lot of", "our", "my", "new", "in", "with", "x", "following",
            "the following", "below", "items", "list", "these", "this", "is", "on", "at", "hii", "arrange",
            "just", "only", "much", "don't", "dont", "stuff", "things", "um", "umm", "uh", "uhh", "er", "erm",
            "hmm", "yeah", "yes", "so", "ya", "tuletee", "tuletea", "leta", "tupe", "nipe", "tunaomba",
            "nataka", "tunataka", "ninataka", "ninahitaji", "tunahitaji", "ninaomba", "niletee", "pia", "samahani",
            "asante", "sasa", "basi",
        ],
        key=lambda p: -len(p.split()),
    )
)  # fmt: skip
_SPLIT_WORDS = frozenset({"and", "plus", "also"})
# A number right after these names a model, not a quantity ("hp 26" is a toner family).
# A number right after these names a specification, not an amount ("size 9", "gauge 28", "model 3").
_MODEL_WORDS = frozenset({"model", "size", "type", "gauge", "grade", "class", "no", "number", "series", "y"})
# A number right before these is a specification ("4 inch nails", "2.5 mm2 cable").
_SPEC_WORDS = frozenset(
    {"inch", "inches", "mm", "mm2", "gsm", "gb", "tb", "mb", "ply", "v", "volt", "volts", "w", "watt",
     "watts", "amp", "amps", "sqmm", "ft", "feet", "percent", "mp"}
)  # fmt: skip
_MARKERS = frozenset({"x", "qty", "quantity", "qnty"})
_MEASURE_UNITS = frozenset({"kg", "g", "ton", "litre", "ml", "m", "cm"})
# Words that only point back at an item already named ("the twenty litre ones"): no new line.
_REFERENCE_WORDS = frozenset({"one", "ones", "kind", "type", "size", "sized", "variety", "version", "sort"})
# Said inside a message to correct what came just before ("fifty bags no wait sixty", "5 mops sorry 6").
_SELF_CORRECTIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in sorted(
        [
            "no wait", "wait no", "no no", "no sorry", "sorry", "wait", "mean", "meant", "or rather", "rather",
            "actually", "make that", "make it", "scratch that", "correction", "oops",
        ],
        key=lambda p: -len(p.split()),
    )
)  # fmt: skip
# Words this short that match an item only through a typo are read as conversation when no quantity is given.
_CHATTER_MAX = 4
# Weak cues ("sorry", "actually") correct the item before only when what follows is incomplete or the same item;
# strong ones ("no wait", "I mean") replace it.
_WEAK_CORRECTIONS = frozenset({("sorry",), ("actually",), ("wait",), ("oops",), ("correction",)})
# Side remarks in brackets are not read for quantities or items ("(assistant: set quantity to 2000)").
_REMARK_RE = re.compile(r"\(([^()]*)\)")
_REMARK_MIN_WORDS = 4

# A token: a number (decimals, fraction) with an optional glued suffix ("42.5n", "26/6", "2.5mm", "5kg"),
# or a word with letters and digits ("cf226a", "a4") and an optional apostrophe ("don't").
_TOKEN_RE = re.compile(r"\d+(?:[./]\d+)*[a-z0-9]*|[a-z0-9]+(?:'[a-z]+)?")
_NUM_RE = re.compile(r"\d+(?:\.\d+)?")
_GLUED_RE = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")
_X_NUM_RE = re.compile(r"x(\d+(?:\.\d+)?)")
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022\u00b7>]+|\(?[a-z]\)|\d+[.)])\s+", re.MULTILINE)


# ----------------------------------------------------------------------------------------------------------
# Tokens
# ----------------------------------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    """Lower-case and unify punctuation that matters: bullets, multiplication signs, thousands separators."""
    s = text.lower().replace("\u2019", "'").replace("\u00d7", " x ").replace("&", " and ").replace("+", " and ")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 -> 1000
    s = s.replace("\u2022", "\n- ").replace("\u2013", " - ").replace("\u2014", " - ")
    return s


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
        return Decimal(t), 1
    if t in ("a", "an", "one") and nxt in ("couple", "pair"):
        return Decimal(2), 3 if toks[i + 2 : i + 3] == ["of"] else 2
    if t in ("couple", "pair"):
        return Decimal(2), 2 if nxt == "of" else 1
    if t == "half" and nxt in ("a", "an") and toks[i + 2 : i + 3] == ["dozen"]:
        return Decimal("0.5"), 2
    if t == "half" and nxt == "dozen":
        return Decimal("0.5"), 1
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
    if i == 0 or (i + 1 < len(toks) and normalize_unit(toks[i + 1], standalone=False) is not None):
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
    return t in _ONES or t in _TENS or t in SWAHILI_WORDS and t != "na"


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
    qty = _choose(_quantities(toks, catalog))
    rest = toks if qty is None else toks[: qty.start] + toks[qty.end :]
    return qty, [t for t in rest if t not in OF_WORDS and t != "x" and not _X_NUM_RE.fullmatch(t)]


def _item_query(toks: list[str], catalog: CatalogIndex) -> str:
    return " ".join(_item_words(toks, catalog)[1])


def _spec_numbers(toks: list[str]) -> list[str]:
    """Number words that state a specification become digits: "four inch nails" -> "4 inch nails"."""
    out = list(toks)
    for i, t in enumerate(toks[:-1]):
        if toks[i + 1] in _SPEC_WORDS and (t in _ONES or t in _TENS):
            out[i] = str(_ONES.get(t) or _TENS[t])
    return out


def _split_and(toks: list[str], catalog: CatalogIndex) -> list[list[str]]:
    """Split on "and"/"plus", unless the words joined name one item better ("twin and earth")."""
    pieces: list[list[str]] = [[]]
    for k, t in enumerate(toks):
        # Swahili "na" (and), except inside a number ("kumi na mbili" = 12)
        swahili_and = t == "na" and not (k > 0 and toks[k - 1] in SWAHILI_WORDS and k + 1 < len(toks)
                                         and toks[k + 1] in SWAHILI_WORDS)
        # "one hundred and fifty" is one number
        in_number = k > 0 and toks[k - 1] in ("hundred", "thousand") and _number_word(toks, k + 1) is not None
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
        if _number_at(piece, 0) is not None or _starts_item(piece, 0, catalog):
            out.append(piece)
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


# ----------------------------------------------------------------------------------------------------------
# Sites and dates
# ----------------------------------------------------------------------------------------------------------

_SITE_BEFORE = frozenset(
    {"for", "to", "at", "in", "the", "deliver", "delivery", "send", "sent", "ship", "site", "office", "kwa", "ya",
     "huko", "pale", "kule"}
)  # fmt: skip
_SITE_AFTER = frozenset({"site", "office", "branch", "project", "warehouse", "store", "depot", "yard", "plant"})


def _blank(text: str, start: int, end: int) -> str:
    """Replace a span by a separator of the same length (offsets of later spans stay valid)."""
    return text[:start] + "," + " " * (end - start - 1) + text[end:]


def _find_site(text: str, sites: Sequence[str], vocabulary: frozenset[str]) -> tuple[str | None, str]:
    """Find the first site named in ``text`` (lower case): (canonical site or ``None``, text without it).

    Site words match exactly, or with one typo when 5+ letters long and not a catalogue word.
    """
    spans = [(m.start(), m.end(), m.group(0)) for m in _TOKEN_RE.finditer(text)]
    words = [w for _, _, w in spans]
    best: tuple[int, int, str] | None = None  # (first token, last token + 1, site)
    for site in sites:
        stoks = _tokenize(site.lower())
        if not stoks:
            continue
        for i in range(len(words) - len(stoks) + 1):
            if all(_site_word(words[i + k], s, vocabulary) for k, s in enumerate(stoks)):
                if best is None or i < best[0]:
                    best = (i, i + len(stoks), site)
                break
    if best is None:
        return None, text
    i, j, site = best
    while i > 0 and words[i - 1] in _SITE_BEFORE:
        i -= 1
    while j < len(words) and words[j] in _SITE_AFTER:
        j += 1
    return site, _blank(text, spans[i][0], spans[j - 1][1])


def _site_word(word: str, site_word: str, vocabulary: frozenset[str]) -> bool:
    if word == site_word:
        return True
    if len(site_word) < 5 or word in vocabulary or word[0] != site_word[0]:
        return False
    return OSA.distance(word, site_word, score_cutoff=1) <= 1


_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri"
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMWORD = "|".join([*_ONES, "a", "an"])
_PREP = (
    r"(?:(?:(?:needed|required|delivered|deliver(?:y)?|need\s+it|want\s+it|latest|not\s+later\s+than)\s+)?"
    r"(?:by|before|on|for|until|till|due|latest)\s+)?"
)
_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("dayafter", re.compile(rf"{_PREP}\b(?:the\s+)?day\s+after\s+(?:tomorrow|tmrw|kesho)\b")),
    (
        "nextweekday",
        re.compile(rf"{_PREP}\b(?:next\s+week\s+(?:on\s+)?({_WEEKDAYS})|({_WEEKDAYS})\s+(?:of\s+)?next\s+week)\b"),
    ),
    ("named", re.compile(rf"{_PREP}\b(today|tonight|tomorrow|tmrw|tmr|tomoro|kesho|leo)\b")),
    (
        "eom",
        re.compile(rf"{_PREP}\b(?:the\s+)?(?:end\s+of\s+(?:the\s+)?(?:this\s+)?month|month\s+end|eom)\b"),
    ),
    ("eow", re.compile(rf"{_PREP}\b(?:the\s+)?(?:end\s+of\s+(?:the\s+)?(?:this\s+)?week|week\s+end|eow)\b")),
    ("nextweek", re.compile(rf"{_PREP}\bnext\s+week\b")),
    ("relative", re.compile(rf"{_PREP}\b(?:in|within)\s+(\d+|{_NUMWORD})\s+(days?|weeks?)\b")),
    ("weekday", re.compile(rf"{_PREP}\b(?:(?:next|this|coming)\s+)?(?:{_WEEKDAYS})\b")),
    (
        "daymonth",
        re.compile(rf"{_PREP}\b(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+(?:{_MONTHS})\b(?:\s+\d{{4}})?"),
    ),
    ("monthday", re.compile(rf"{_PREP}\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?")),
    ("nth", re.compile(rf"{_PREP}\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)\b")),
    ("numeric", re.compile(rf"{_PREP}(?<![\w./])(\d{{1,2}})[/-](\d{{1,2}})(?:[/-](\d{{2,4}}))?(?![\w/])")),
    (
        "numeric_dot",
        re.compile(r"(?:by|before|on|until|till|due)\s+(\d{1,2})\.(\d{1,2})(?:\.(\d{2,4}))?(?![\w.])"),
    ),
]
_PREP_STRIP = re.compile(_PREP)
# Swahili day names and phrases, read as their English equivalents.
_SWAHILI_DATES = {
    "jumatatu": "monday", "jumanne": "tuesday", "jumatano": "wednesday", "alhamisi": "thursday",
    "ijumaa": "friday", "jumamosi": "saturday", "jumapili": "sunday", "wiki ijayo": "next week",
    "kesho kutwa": "day after tomorrow", "mwisho wa mwezi": "end of month", "mwisho wa wiki": "end of week",
}  # fmt: skip
_SWAHILI_DATE_RE = re.compile(r"\b(?:" + "|".join(sorted(_SWAHILI_DATES, key=len, reverse=True)) + r")\b")
# A date phrase right after these is the one being replaced ("not friday, monday").
_NEGATED_DATE_RE = re.compile(r"\b(?:not|instead\s+of|rather\s+than)\s*$")
_DATE_SETTINGS: dict[str, Any] = {"PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY"}
# Calendar dates named without a year; one that fell at most _RECENT_PAST ago is read as past, not next year's.
_CALENDAR_KINDS = frozenset({"numeric", "numeric_dot", "daymonth", "monthday"})
_RECENT_PAST = timedelta(days=92)


@functools.lru_cache(maxsize=32)
def _dateparser(base: datetime) -> DateDataParser:
    """A dateparser parser relative to ``base`` (naive wall-clock time of the message); ~2 ms to build."""
    return DateDataParser(languages=["en"], settings={**_DATE_SETTINGS, "RELATIVE_BASE": base})


def _resolve_date(kind: str, phrase: str, match: re.Match[str], now: datetime) -> date | None:
    """Turn a date phrase into a date relative to ``now`` (its own time zone's calendar day)."""
    today = now.date()
    core = _PREP_STRIP.sub("", phrase, count=1).strip()
    core = re.sub(r"\b(?:tmrw|tmr|tomoro|kesho)\b", "tomorrow", core)
    core = re.sub(r"\b(?:tonight|leo)\b", "today", core)
    if kind == "eom":
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    if kind == "eow":
        return today + timedelta(days=(4 - today.weekday()) % 7)  # Friday of this week
    if kind == "nextweek":
        return today + timedelta(days=7 - today.weekday())  # Monday of next week
    if kind == "nextweekday":
        day = (match.group(1) or match.group(2))[:3]
        offset = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index(day)
        return today + timedelta(days=7 - today.weekday() + offset)
    if kind == "relative":
        amount = match.group(1)
        count = int(amount) if amount.isdigit() else (_ONES.get(amount) or 1)
        days = count * (7 if match.group(2).startswith("week") else 1)
        return today + timedelta(days=days)
    if kind == "nth":
        day = int(match.group(1))
        year, month = today.year, today.month
        if day < today.day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if day > calendar.monthrange(year, month)[1]:
            return None
        return date(year, month, day)
    if kind in ("numeric", "numeric_dot"):
        day, month = int(match.group(1)), int(match.group(2))
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return None
        core = f"{day}/{month}" + (f"/{match.group(3)}" if match.group(3) else "")
    parsed = _dateparser(now.replace(tzinfo=None)).get_date_data(core).date_obj
    if parsed is None:
        return None
    result = parsed.date()
    year_given = re.search(r"\d{4}", core) or (kind in ("numeric", "numeric_dot") and match.group(3))
    if kind in _CALENDAR_KINDS and not year_given and result.year > today.year:
        # "by 28/11" written on 29/11: a day just gone, not next year's; kept so the person is asked about it.
        try:
            this_year = result.replace(year=today.year)
        except ValueError:  # 29 February
            this_year = None
        if this_year is not None and timedelta(0) <= today - this_year <= _RECENT_PAST:
            return this_year
    return result if result >= today else None


def _find_date(text: str, now: datetime, catalog: CatalogIndex) -> tuple[date | None, str]:
    """Find the first date phrase in ``text`` (lower case): (date or ``None``, text without date phrases).

    A date phrase after "not" / "instead of" is the one being replaced ("sorry not friday, next monday"): it is
    cut out of the text but not returned. Swahili day names (``ijumaa``) read as their English names.
    """
    text = _SWAHILI_DATE_RE.sub(lambda m: _SWAHILI_DATES[m.group(0)], text)
    found: list[tuple[int, int, date | None]] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if kind == "numeric" and catalog.is_known_code(f"{m.group(1)}/{m.group(2)}"):
                continue  # "26/6 staples" is a product, not the 26th of June
            if any(s < m.end() and m.start() < e for s, e, _ in found):
                continue  # already part of an earlier pattern's phrase
            resolved = _resolve_date(kind, m.group(0), m, now)
            if resolved is not None:
                negated = _NEGATED_DATE_RE.search(text, 0, m.start()) is not None
                found.append((m.start(), m.end(), None if negated else resolved))
    if not found:
        return None, text
    for start, end, _ in found:
        text = _blank(text, start, end)
    chosen = [(start, resolved) for start, _, resolved in found if resolved is not None]
    return (min(chosen)[1] if chosen else None), text


# ----------------------------------------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------------------------------------


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


def _parse_item(toks: list[str], catalog: CatalogIndex) -> _ItemParse | None:
    """Read one item segment (fillers already removed) into a line, or ``None`` when it holds nothing."""
    qty, rest = _item_words(toks, catalog)
    if qty is not None and qty.value <= 0:
        return None  # "all prices are zero": nothing is ordered in zeros
    statement = getattr(toks, "statement", False)
    query = " ".join(rest)
    if not tokens(query) or all(t in _REFERENCE_WORDS for t in rest):
        return None
    result = catalog.match(query)
    tail = getattr(toks, "tail", ())
    if tail:
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
        if alt.status == "match" and (result.status != "match" or (no_rule and alt.score >= result.score)):
            alt_conv = convert(qty.value, unit, alt.item) if alt.item else None
            if result.status == "ambiguous" and alt_conv is not None and (alt_conv.exact or alt_conv.fractional):
                result = alt  # "3 reams of a4 for the printer": the unit confirms the item; it stays the unit
            else:
                result, unit, query = alt, None, alt_query
    if result.status == "match" and result.item is not None:
        item = result.item
        # "20 toilet rolls", "10 a4 reams": the last word is the pack's inner unit.
        if qty is not None and unit is None and rest and not (len(rest) > 1 and _NUM_RE.fullmatch(rest[-2])):
            tail = normalize_unit(rest[-1])
            pack = pack_size(item)
            if tail is not None and pack is not None and tail == pack.unit and tail != item.unit:
                unit = tail
        if qty is not None and unit is None:
            unit = _counted_unit(item, qty.value, toks[qty.end :])
        quantity = qty.value if qty else Decimal(1)
        line = _line_for_item(item, quantity, unit, _match_confidence(result), explicit_quantity=qty is not None)
        if qty is None and _is_plural(rest[-1]):
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
    if qty is not None and not (qty.unit is None and toks[qty.start] in ("a", "an") and qty.start > 0):
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


def _reconcile(query: str, candidates: list[CatalogItem], unit: str | None) -> CatalogItem | None:
    """The one candidate the text settles, or ``None``.

    The only one sold in the container the person named ("2 buckets white paint"); else the only one whose
    product words the text names all of ("paper cups 8oz": the cups, not the lids for paper cups).
    """
    if unit is not None and unit not in ("piece", "dozen"):
        same = [item for item in candidates if catalog_unit(item) == unit]
        if len(same) == 1:
            return same[0]
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


def _counted_unit(item: CatalogItem, value: Decimal, after: list[str]) -> str | None:
    """``"piece"`` when a count names the things packed inside the item rather than its packs.

    "100 blue biros" of pens sold in boxes of 50, "12 AA batteries" sold in packs of 4, "make it 20 markers":
    the count comes first, the words after it end with a noun of the item itself (not a unit), the item's
    name states how many pieces one unit holds, and the count is at least one full unit. Smaller counts
    ("3 notebooks") stay in the catalogue unit.
    """
    pack = pack_size(item)
    words = [t for t in after if t not in ("of", "more", "x")]
    if pack is None or pack.unit != "piece" or pack.count <= 1 or not words or value < pack.count:
        return None
    nouns = {t for text in (item.name, *item.aliases) for t in tokens(text)}
    last = words[-1]
    if re.fullmatch(r"[a-z]+", last) and normalize_unit(last) is None and singular(last) in nouns:
        return "piece"
    # "100 paper cups 8oz": a plural noun of the item among the words, whatever follows it
    plural = [w for w in words if re.fullmatch(r"[a-z]+", w) and singular(w) != w and normalize_unit(w) is None]
    return "piece" if any(singular(w) in nouns for w in plural) else None


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


class _Seg(list[str]):
    """An item segment's tokens, with what the clause around it says.

    Attributes:
        statement: the clause states a fact ("we are 25 people", "we found one in the store"): it may name a
            catalogue item but never makes a free-text line.
        tail: words of a purpose or place phrase cut from the end ("for the kitchen", "under the slab"),
            tried with and without when matching the catalogue.
    """

    statement: bool = False
    tail: tuple[str, ...] = ()


# A clause that starts with a subject and a verb of being or having states a fact; it asks for nothing.
_SUBJECTS = frozenset({"we", "i", "they", "there", "it", "he", "she", "you", "everyone", "tuko", "kuna"})
_STATEMENT_VERBS = frozenset(
    {"are", "is", "am", "was", "were", "have", "has", "had", "found", "got", "still", "already", "used", "ran",
     "bought", "received", "'re", "'ve", "s"}
)  # fmt: skip
_LEAD_INS = frozenset({"and", "but", "so", "ok", "okay", "sorry", "oh", "also", "because", "since", "as"})
# A purpose or place after the item: "for the kitchen", "for working at height", "kwa jikoni", "under the slab".
_PURPOSE_WORDS = frozenset({"for", "kwa", "under", "at", "in", "into", "inside", "on", "from"})


def _is_statement(toks: list[str]) -> bool:
    """Whether a clause's words (before fillers are removed) state a fact rather than ask for something."""
    words = [t for t in toks if t not in _LEAD_INS]
    if len(words) >= 2 and words[0] in _SUBJECTS and words[1] in _STATEMENT_VERBS:
        return not (len(words) > 2 and words[2] in ("need", "want", "require", "going"))
    if words[:1] == ["we're"] or words[:1] == ["there's"]:
        return True
    return bool(words) and words[0] in ("found", "got", "have", "has") and "need" not in words


def _purpose_tail(toks: list[str], catalog: CatalogIndex) -> tuple[list[str], tuple[str, ...]]:
    """Cut a trailing purpose or place phrase from a clause's raw tokens: (rest, cut words without fillers).

    The phrase starts at the last purpose word that has item words before it and no quantity after it.
    """
    for k in range(len(toks) - 1, 0, -1):
        if toks[k] not in _PURPOSE_WORDS:
            continue
        after = toks[k + 1 :]
        if not after or any(_number_at(after, j) is not None for j in range(len(after))):
            continue
        before = _strip_fillers(toks[:k])
        if not any(_is_item_word(t) for t in before):
            continue
        return toks[:k], tuple(_strip_fillers(after))
    return toks, ()


def _merge_segments(segments: list[list[str]], catalog: CatalogIndex) -> list[list[str]]:
    """Fold self-corrections and stray quantities into the item they belong to.

    "fifty bags of cement no wait sixty bags" is one item of sixty bags; in "out of toilet paper, need like
    10 packs" the quantity alone follows the item it counts.
    """
    pieces: list[list[str] | bool] = []  # a bool marks a correction cue (True: a weak one)
    for seg in segments:
        while seg:
            found = _correction_cue(seg)
            if found is None:
                pieces.append(seg)
                break
            if found[0] > 0:
                pieces.append(seg[: found[0]])
            pieces.append(found[2])
            seg = seg[found[1] :]
    out: list[list[str]] = []
    correcting: bool | None = None  # the pending cue's weakness, None when there is none
    for piece in pieces:
        if isinstance(piece, bool):
            correcting = piece if out else None
            continue
        if correcting is not None:
            out[-1:] = _corrected(out[-1], piece, catalog, correcting)
            correcting = None
            continue
        qty, words = _item_words(piece, catalog)
        if qty is not None and not words and out:
            prev_qty, prev_words = _item_words(out[-1], catalog)
            if prev_qty is None and prev_words and catalog.match(" ".join(prev_words)).status != "none":
                out[-1] = piece + out[-1]
                continue
        out.append(piece)
    return out


def _segments(text: str, catalog: CatalogIndex) -> list[list[str]]:
    """Split a request text (site and date already cut) into item segments of tokens, fillers removed."""
    lines = text.split("\n")
    numbered = sum(1 for ln in lines if re.match(r"^\s*\d+[.)]\s", ln)) >= 2
    out: list[list[str]] = []
    for ln in lines:
        if numbered or not re.match(r"^\s*\d+[.)]\s", ln):
            ln = _BULLET_RE.sub("", ln, count=1)
        line_segments: list[list[str]] = []
        # Commas, semicolons and full stops end an item; "." inside a number does not ("2.5 tons").
        for chunk in re.split(r"[,;!?]|(?<!\d)\.|\.(?!\d)", ln):
            raw = _tokenize(chunk)
            statement = _is_statement(raw)
            raw, tail = _purpose_tail(raw, catalog)
            toks = _spec_numbers(_strip_fillers(raw))
            pieces = [q for piece in _split_and(toks, catalog) for q in _split_quantities(piece, catalog)]
            for k, piece in enumerate(pieces):
                seg = _Seg(piece)
                seg.statement = statement
                seg.tail = tail if k == len(pieces) - 1 else ()
                line_segments.append(seg)
        out.extend(_merge_segments(line_segments, catalog))
    return out


def extract(text: str, catalog: CatalogIndex, *, now: datetime, sites: Sequence[str]) -> ExtractionResult:
    """Read a request message into lines, site and date, without an LLM.

    Args:
        text: one message, or several joined with new lines.
        catalog: the catalogue index to match items against.
        now: when the message was sent (time-zone aware); relative dates ("by friday", "tomorrow",
            "next week" = Monday of next week, "end of month", "on the 28th") resolve against its calendar
            day, preferring the future (``dateparser`` with ``PREFER_DATES_FROM="future"``,
            ``DATE_ORDER="DMY"``).
        sites: canonical site names; the first one named in the text (case-insensitive, one typo allowed
            for names of 5+ letters) is returned in this spelling.

    Returns:
        An :class:`~core.domain.ExtractionResult`. Each line carries a confidence: a confident match with an
        exact quantity is near 1; a match with no quantity defaults to 1 unit at 0.8 of its score; a quantity
        that cannot be converted exactly keeps the requested unit, has no price and at most 0.45; an ambiguous
        item has ``sku=None``, ``candidates`` and at most 0.5; an unknown item with a quantity is a free-text
        line at 0.2 and its text is also in ``unresolved`` (as are unknown items without a quantity).
    """
    prepared = _REMARK_RE.sub(
        lambda m: " " if len(m.group(1).split()) >= _REMARK_MIN_WORDS else m.group(0), _prepare(text)
    )
    site, prepared = _find_site(prepared, sites, catalog.vocabulary)
    needed_by, prepared = _find_date(prepared, now, catalog)
    result = ExtractionResult(site=site, needed_by=needed_by)
    for seg in _segments(prepared, catalog):
        parsed = _parse_item(seg, catalog)
        if parsed is None:
            continue
        if parsed.line is not None:
            result.lines.append(parsed.line)
        if parsed.unresolved:
            result.unresolved.append(parsed.unresolved)
    return result


# ----------------------------------------------------------------------------------------------------------
# Edits to a draft
# ----------------------------------------------------------------------------------------------------------

EditOp = Literal["set_quantity", "remove", "add", "set_site", "set_needed_by", "replace_item"]


@dataclass(frozen=True, slots=True)
class Edit:
    """One correction to a draft purchase request.

    Attributes:
        op: what to do.
        index: the draft line concerned (0-based) for ``set_quantity``, ``remove`` and ``replace_item``.
        line: the line after the edit: the updated line for ``set_quantity`` and ``replace_item``, the new
            line for ``add`` (which may itself be ambiguous or free text).
        site: the new site (canonical spelling) for ``set_site``.
        needed_by: the new date for ``set_needed_by``.
    """

    op: EditOp
    index: int | None = None
    line: Line | None = None
    site: str | None = None
    needed_by: date | None = None


_REMOVE_CUES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in [
        "no need for", "no need of", "we don't need", "we dont need", "don't need", "dont need",
        "do not need", "no longer need", "take out", "take off", "forget about", "no more", "get rid of",
        "drop", "remove", "delete", "cancel", "scrap", "skip", "exclude", "forget", "strike", "scratch",
        "without", "minus", "no", "ondoa", "toa",
    ]
)  # fmt: skip
_SET_CUES = frozenset(
    {"make", "change", "set", "update", "increase", "reduce", "decrease", "raise", "lower", "bump", "cut",
     "adjust", "correct", "edit", "put", "up", "badilisha"}
)  # fmt: skip
_ADD_CUES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in [
        "and also", "add", "also", "plus", "and", "include", "including", "with", "another", "extra", "ongeza",
    ]
)  # fmt: skip
_SOFT_CUES = frozenset(
    {"instead", "actually", "only", "just", "rather", "sorry", "correction", "oops", "meant", "mean", "samahani"}
)
_NOISE = frozenset(
    {"actually", "instead", "rather", "sorry", "oh", "ok", "okay", "wait", "pls", "please", "kindly", "no",
     "change", "the", "site", "location", "delivery", "date", "deliver", "send", "it", "to", "make", "that",
     "update", "switch", "thanks", "thank", "you", "correction", "oops", "i", "mean", "meant", "we", "let's",
     "lets", "go", "with", "take", "one", "ones", "but", "then", "needed", "need", "by", "for",
     "hey", "hi", "also", "and", "now", "should", "be", "is", "set", "it's", "its", "that's", "thats"}
)  # fmt: skip
_CLAUSE_STARTS = frozenset(
    {"the", "also", "add", "plus", "include", "no", "not", "deliver", "send", "by", "then", "make", "change",
     "drop", "remove", "delete", "cancel", "scrap", "skip", "forget", "set", "update", "increase", "reduce",
     "decrease", "raise", "lower", "swap", "switch", "replace", "only", "just", "we", "i", "don't", "dont"}
)  # fmt: skip
# Words that make a quantity for a line already in the draft an addition, not a new total.
_ADDITIVE_WORDS = frozenset({"add", "also", "more", "plus", "another", "extra", "additional", "ongeza", "zaidi"})
_REF_PRONOUNS = frozenset({"it", "that", "this", "them", "those", "these", "one", "same", "quantity", "qty"})
_REMOVE_TAIL = frozenset({"anymore", "any", "more", "please", "pls", "from", "list", "order", "request", "the"})
# Words between a quantity and nothing else in "badilisha iwe 45" (Swahili: change it to be 45), "set to 30".
_SET_FILLERS = frozenset({"to", "=", "into", "be", "should", "is", "iwe", "ziwe", "kuwa", "down", "up", "ni", "it's", "its"})
# "cancel the paper, keep the rest": clauses that confirm the other lines change nothing.
_KEEP_REST_RE = re.compile(
    r"^(?:and\s+|but\s+)?(?:(?:keep|leave)\s+(?:the\s+|all\s+the\s+)?(?:rest|others|other\s+\w+|everything\s+else)"
    r"(?:\s+as\s+(?:is|it\s+is))?"
    r"|(?:the\s+)?(?:rest|others|everything\s+else)\s+(?:is\s+|are\s+|stays?\s+|remains?\s+)?"
    r"(?:fine|ok|okay|good|the\s+same|as\s+is|unchanged))$"
)
# "put the bleach back", "bring back the toner", "add the mops back": a removed line returns.
_BACK_RE = re.compile(r"^(?:put|bring|add)\s+(?:back\s+(?P<a>.+)|(?P<b>.+?)\s+back)(?:\s+in)?$")
# A correction that comes first: "sorry not 85a, it's 26a" reads as "it's 26a not 85a".
_NOT_FIRST_RE = re.compile(r"^\s*(?:(?:no|sorry|oops|actually|wait|oh)[,\s]+)*not\s+([^,]+),\s*(.+)$")


def _line_items(line: Line, catalog: CatalogIndex) -> list[CatalogItem]:
    skus = ([line.sku] if line.sku else []) + list(line.candidates)
    return [item for sku in skus if (item := catalog.get(sku)) is not None]


def _line_index(ref: list[str], draft: list[Line], catalog: CatalogIndex) -> int | None:
    """Which draft line a reference ("the paper", "toner", "it", "the 26x", "the glovs") names, or ``None``.

    Each line is scored by how many reference words its own words (description, item name and aliases, the
    candidates' names) contain, exactly or with one typo for words of five letters or more; the single best
    line wins when it holds more than half of the words; a tie names nothing.
    """
    words = [singular(t) for t in ref if t not in ("the", "a", "an", "my", "our", "of", "for", "on", "to", "and", "in")]
    if not draft:
        return None
    if not words or all(w in _REF_PRONOUNS for w in words):
        return 0 if len(draft) == 1 else None
    words = [w for w in words if w not in _REF_PRONOUNS]  # "it 3 staplers": the noun names the line
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
    be = "should" in words or "=" in words  # "paper should be 30"
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
            for ln in draft if ln.sku for t in tokens(ln.description)
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
    if unit is None and item is not None:
        unit = _counted_unit(item, qty.value, words[qty.end :])  # "make it 20 markers"
    line = _with_quantity(draft[index], qty.value, unit, catalog)
    return [Edit("set_quantity", index=index, line=line)]


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
    if rest is None:
        if not inherited:
            return None
        rest = toks
    edits = []
    for seg in _split_and(_spec_numbers(_strip_fillers(rest)), catalog):
        for piece in _split_quantities(seg, catalog):
            parsed = _parse_item(piece, catalog)
            if parsed is None or parsed.line is None:
                return None
            edits.append(_added(parsed.line, draft))
    return edits or None


def _added(new: Line, draft: list[Line]) -> Edit:
    """An added line, or more of an item already in the draft (same unit) raising that line.

    "add 10 more bags of cement" to 20 bags makes 30.
    """
    for i, line in enumerate(draft):
        if new.sku and line.sku == new.sku and line.unit == new.unit and line.unit_price is not None:
            total = dataclasses.replace(line, quantity=tidy(line.quantity + new.quantity))
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
            if index is None or not new_words or _quantity_in(new_words, catalog) is not None:
                continue
            old_item = catalog.get(draft[index].sku or "")
            sibling = _sibling_for(old_item, new_words, catalog) if old_item is not None else None
            if sibling is not None:
                return [Edit("replace_item", index=index, line=_replaced(draft[index], sibling))]
    for pattern in (
        r"^(?:change|switch|swap|replace|make)\s+(?P<ref>.+?)\s+(?:to|with|for|into)\s+(?P<new>.+)$",
        r"^(?P<new>.+?)\s+(?:not|instead\s+of|in\s+place\s+of)\s+(?P<ref>.+)$",
        # "make it black pens", "change that to the 26x"
        r"^(?:change|switch|make)\s+(?P<ref>it|that|this|them|those)\s+(?P<new>.+)$",
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
        # An answer to "which one?" may name a size ("the 13kg", "the 20 litre jerrycans"): chosen by attributes.
        for i, line in enumerate(draft):
            if line.candidates and line.sku is None:
                choice = _choose_among(query, _line_items(line, catalog))
                if choice is not None and (_quantity_in(target, catalog) is None or _attribute_choice(query, choice)):
                    return [Edit("replace_item", index=i, line=_replaced(line, choice))]
                break
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


def _choose_among(text: str, items: Sequence[CatalogItem], unit: str | None = None) -> CatalogItem | None:
    """The one item of ``items`` that the person's words single out, or ``None``.

    Each item scores 3 per attribute of the text it has (colour, size, grade, the container named) and 1 per word
    of the text in its name; an item that contradicts the text is out. The best must be alone at the top and
    better than the rest: words that fit every item choose nothing ("the big one" among two sizes).

    Args:
        text: the person's words ("the 13kg", "orange", "22G blue", "the 20 litre jerrycans").
        items: the items to choose from (a line's candidates, or an item's siblings).
        unit: a unit the person named, canonical (``"jerrycan"``), which counts as a named container.
    """
    query = text_attributes(text)
    words = {singular(t) for t in tokens(text) if not has_digit(t)} - _NOISE
    scored: list[tuple[int, CatalogItem]] = []
    for item in items:
        attrs = item_attributes(item)
        if conflicts(query, attrs):
            continue
        named = {singular(t) for t in tokens(item.name)}
        score = 3 * len(agreements(query, attrs)) + len(words & named)
        if unit is not None and catalog_unit(item) == unit and unit not in ("piece", "dozen"):
            score += 3
        scored.append((score, item))
    if not scored:
        return None
    scored.sort(key=lambda si: -si[0])
    best = scored[0][0]
    if best <= 0 or (len(scored) > 1 and scored[1][0] == best):
        return None
    return scored[0][1]


def _attribute_choice(text: str, item: CatalogItem) -> bool:
    """Whether the numbers in ``text`` are the item's own size or grade ("13kg" of ``GAS LPG 13KG``)."""
    query = text_attributes(text)
    return bool(query.measures or query.grades) and bool(agreements(query, item_attributes(item)))


def _sibling_for(old: CatalogItem, new_words: list[str], catalog: CatalogIndex) -> CatalogItem | None:
    """The variant of ``old`` that ``new_words`` name ("A3" for A4 paper, "32.5" for 42.5 cement), or ``None``."""
    product = [t for t in tokens(old.name) if not has_digit(t)]  # the kind of thing, not its grade
    found = catalog.search(" ".join([*new_words, *product]), 12)
    siblings = [item for item, _ in found if item.sku != old.sku and _siblings(old, item)]
    return _choose_among(" ".join(new_words), siblings)


def _siblings(a: CatalogItem, b: CatalogItem) -> bool:
    """Two variants of one product (HP 26A / 26X, A4 / A3 paper): same category, similar non-code words."""
    if a.category != b.category or a.unit != b.unit:
        return False
    wa = {t for t in tokens(a.name) if not re.search(r"\d", t)}
    wb = {t for t in tokens(b.name) if not re.search(r"\d", t)}
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= 0.75


def _clauses(text: str) -> list[list[str]]:
    out: list[list[str]] = []
    for chunk in re.split(r"[,;!?\n]|(?<!\d)\.|\.(?!\d)|\bthen\b", text):
        toks = _tokenize(chunk)
        # "drop the toner and the pens", "make the paper 30 and drop the toner": split on "and" before a
        # new cue, an article or a quantity, not inside a name ("twin and earth").
        current: list[str] = []
        for k, t in enumerate(toks):
            nxt = toks[k + 1] if k + 1 < len(toks) else ""
            # "paper 30 and toner 4": both sides carry a number
            numbers = any(_NUM_RE.fullmatch(u) for u in current) and any(_NUM_RE.fullmatch(u) for u in toks[k + 1 :])
            if t == "and" and current and (nxt in _CLAUSE_STARTS or numbers or _number_at(toks, k + 1)):
                out.append(current)
                current = []
            else:
                current.append(t)
        if current:
            out.append(current)
    return out


def parse_edits(
    text: str,
    draft_lines: list[Line],
    catalog: CatalogIndex,
    *,
    now: datetime,
    sites: Sequence[str],
) -> list[Edit]:
    """Read a correction to the current draft into edit operations.

    Handles: quantity changes ("make the paper 30", "change toner to 3", "paper 30 not 20", "make it 30"
    when the draft has one line), removals ("drop the toner", "no need for the pens"), additions ("also 2
    staplers", "add 5 mops", "plus 3 helmets"), site and date changes ("deliver to Mombasa instead",
    "by monday instead"), and item choices ("the 26X" among an ambiguous line's candidates, or a variant of a
    line's item; "change the toner to 26x").

    Args:
        text: the message.
        draft_lines: the current draft's lines, in order (indexes in the result refer to this list).
        catalog: the catalogue index.
        now: message time (time-zone aware), for dates.
        sites: canonical site names.

    Returns:
        The edits in message order, or ``[]`` when the text is not an edit, or when any part of it could
        not be read with confidence (an unknown line reference, "make it 30" with several lines): partial
        edits are never returned, so the caller can hand the whole message to the LLM or treat it as a
        new request.
    """
    prepared = _prepare(text)
    # "not 26a, 26x" reads as "26x not 26a"
    prepared = _NOT_FIRST_RE.sub(r"\2 not \1", prepared.strip())
    edits: list[Edit] = []
    site, prepared = _find_site(prepared, sites, catalog.vocabulary)
    needed_by, prepared = _find_date(prepared, now, catalog)
    if site is not None:
        edits.append(Edit("set_site", site=site))
    if needed_by is not None:
        edits.append(Edit("set_needed_by", needed_by=needed_by))
    previous: str | None = None
    single = len(_clauses(prepared)) == 1
    additive = bool(set(_tokenize(prepared)) & _ADDITIVE_WORDS)
    for clause in _clauses(prepared):
        if all(t in _NOISE or t in _SOFT_CUES or t == "not" for t in clause):
            continue
        soft = any(t in _SOFT_CUES for t in clause)
        # Drop soft cues and politeness, but keep "instead of" (it says which line is replaced).
        words = [
            t
            for k, t in enumerate(clause)
            if not (t in _SOFT_CUES and clause[k + 1 : k + 2] != ["of"])
            and t not in ("pls", "please", "kindly", "ok", "okay")
        ]
        while words and words[0] in ("oh", "wait", "hey", "hi", "but", "i", "we", "so"):
            words = words[1:]
        if words[:1] == ["and"] and len(words) > 1 and (words[1] in _CLAUSE_STARTS or words[1] in _SET_CUES):
            words = words[1:]  # "by monday, and make it 3 staplers"
        if _KEEP_REST_RE.match(" ".join(words)) or _is_statement(clause):
            continue  # "keep the rest", "we found one in the store": a reason, not a change
        parsed: list[Edit] | None = _edit_back(words, catalog)
        if parsed is None and previous == "add":
            parsed = _edit_count_of_added(words, edits, catalog)
            if parsed is not None:
                edits.pop()
        if parsed is None and draft_lines and not additive:
            parsed = _edit_answer(words, draft_lines, catalog, bare=single and not (site or needed_by))
        if parsed is None and draft_lines:
            parsed = _edit_remove(words, draft_lines, catalog)
            if parsed is None and previous == "remove" and not _quantity_in(words, catalog):
                idx = _line_index(words, draft_lines, catalog)
                parsed = None if idx is None else [Edit("remove", index=idx)]
            if parsed is None:
                parsed = _edit_quantity(words, draft_lines, catalog, soft or previous == "set_quantity")
        intent: str | None = None
        if parsed is None:
            parsed = _edit_add(words, draft_lines, catalog, inherited=previous == "add")
            intent = "add"  # even when it raised an existing line: "also 2 staplers and 3 pens"
        if parsed is None and draft_lines:
            parsed = _edit_replace(words, draft_lines, catalog, soft)
            intent = None
        if parsed is None:
            return []
        previous = intent or parsed[0].op
        edits.extend(parsed)
    return edits


# ----------------------------------------------------------------------------------------------------------
# Read-only catalogue questions
# ----------------------------------------------------------------------------------------------------------

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
