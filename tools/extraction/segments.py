"""A request message into item segments and lines: clauses, statements, purpose phrases, ``extract``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from core.domain import ExtractionResult, Line
from tools.catalog import CatalogIndex, singular, tokens
from tools.catalog.attributes import item_attributes, text_attributes
from tools.extraction.items import _corrected, _correction_cue, _is_label, _line_for_item, _parse_item
from tools.extraction.lexicon import (
    _BULLET_RE,
    _REFERENCE_WORDS,
    _REMARK_MIN_WORDS,
    _REMARK_RE,
    CHECK_CONFIDENCE,
    FREE_TEXT_CONFIDENCE,
    UNSPECIFIED_UNIT,
)
from tools.extraction.places import _find_date, _find_site
from tools.extraction.quantities import (
    _is_item_word,
    _item_words,
    _number_at,
    _prepare,
    _Qty,
    _spec_numbers,
    _split_and,
    _split_quantities,
    _strip_fillers,
    _tokenize,
)
from tools.extraction.reconcile import _better


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


_GREETINGS = frozenset(
    {"hi", "hello", "hey", "morning", "good", "afternoon", "evening", "team", "guys", "all", "boss", "sir", "madam",
     "dear", "habari", "jambo", "mambo", "sasa", "niaje", "hallo", "greetings"}
)  # fmt: skip


def _is_statement(toks: list[str]) -> bool:
    """Whether a clause's words (before fillers are removed) state a fact rather than ask for something."""
    words = [t for t in toks if t not in _LEAD_INS]
    while words and (words[0] in _GREETINGS or not any(c.isalnum() for c in words[0])):
        words = words[1:]  # "morning team 😊 we are 25 on site": the greeting says nothing of the clause
    if len(words) >= 2 and words[0] in _SUBJECTS and words[1] in _STATEMENT_VERBS:
        return not (len(words) > 2 and words[2] in ("need", "want", "require", "going"))
    if words[:1] == ["we're"] or words[:1] == ["there's"]:
        return True
    return bool(words) and words[0] in ("found", "got", "have", "has") and "need" not in words


def _purpose_tail(toks: list[str], catalog: CatalogIndex) -> tuple[list[str], tuple[str, ...]]:
    """Cut a trailing purpose or place phrase from a clause's raw tokens: (rest, cut words without fillers).

    The phrase starts at the first purpose word that has item words before it and no quantity after it ("harness
    for working at height" keeps "harness").
    """
    for k in range(1, len(toks)):
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
        if out:
            prev_qty, prev_words = _item_words(out[-1], catalog)
            # "mabati gauge 28, 40 sheets": an amount alone counts the item named before it (also after a size
            # given alone: "lpg refill, 50kg, 1")
            # ... and after a label: "room 204 needs bath towels, 6 pcs"
            labelled = prev_qty is not None and _is_label(prev_qty, out[-1])
            if (
                qty is not None
                and not words
                and prev_words
                and (prev_qty is None or labelled or (prev_qty.kind == 5 != qty.kind))
            ):
                before = out[-1]
                if labelled and prev_qty is not None:  # the place it is for is no part of the item's name
                    before = _Seg([*before[: prev_qty.start - 1], *before[prev_qty.end :]])
                    before.statement = getattr(out[-1], "statement", False)
                    before.tail = getattr(out[-1], "tail", ())
                out[-1] = _joined(piece, before)
                continue
            # "ndoo za plastiki lita ishirini, nne", "sufuria 100 litre, 2": the measure before a bare count is
            # the item's size; the count counts it
            if qty is not None and not words and qty.unit is None and prev_words and prev_qty is not None:
                if prev_qty.unit in _SIZE_UNITS:
                    out[-1] = _joined(piece, _size_glued(out[-1], prev_qty))
                    continue
            # "2 of the big toners, 26X", "the big one": a grade, colour or size word alone describes that item
            if (qty is not None and qty.unit is None and words and prev_words and all(w in _POINTERS for w in words)
                    and (prev_qty is None or prev_qty.unit in _SIZE_UNITS)):  # fmt: skip
                # "dewormer, the 5 litre, 2 of them": the count is of that item; its 5 litres are its size
                out[-1] = _joined(piece, _size_glued(out[-1], prev_qty))  # the count first: it leads
                continue
            if qty is not None and qty.unit in _SIZE_UNITS and prev_words and all(w in _REFERENCE_WORDS for w in words):
                out[-1] = _joined(out[-1], piece)  # "DAP 10 bags, the 50 kilo ones": a size of the item before
                continue
            pronoun = qty is not None and piece[qty.start] == "one" and qty.end - qty.start == 1  # "the big one"
            # "gas refill, the big 50kg cylinder x2": a count with only describing words counts the item before
            marker = (
                qty is not None and qty.kind == 0 and prev_qty is None
                and (_describes(words, catalog) or _joins_better(prev_words, words, catalog))
            )  # fmt: skip
            if prev_words and ((qty is None and words and _describes(words)) or (pronoun and _describes(list(piece))) or marker):
                out[-1] = _joined(out[-1], piece)
                continue
        out.append(piece)
    return out


_SIZE_UNITS = frozenset({"kg", "g", "ton", "litre", "ml", "m", "cm", "mm"})
_POINTERS = frozenset({"them", "those", "these", "it", "that", "this", "one", "ones"})


def _size_glued(piece: list[str], qty: _Qty | None) -> list[str]:
    """The piece with its measured amount written as a size token ("5 litre" -> "5litre"), flags kept."""
    if qty is None:
        return piece
    seg = _Seg([*piece[: qty.start], f"{qty.value.normalize():f}{qty.unit}", *piece[qty.end :]])
    seg.statement, seg.tail = getattr(piece, "statement", False), getattr(piece, "tail", ())
    return seg
# Words that only size or point at an item already named ("the big one", "the smaller ones").
_SIZE_WORDS = frozenset({"big", "bigger", "biggest", "small", "smaller", "smallest", "large", "larger", "medium",
                         "kubwa", "ndogo", "the", "same"})  # fmt: skip


def _describes(words: list[str], catalog: CatalogIndex | None = None) -> bool:
    """Whether words carry only attributes (grade, code, colour, size) and no product of their own.

    With ``catalog``, a word the item master never uses ("cylinder") names no product of its own either.
    """
    attrs = text_attributes(" ".join(words))
    vocabulary = catalog.vocabulary if catalog is not None else frozenset()
    plain = [w for w in attrs.words if not (catalog is not None and w not in vocabulary)]
    return all(w in _REFERENCE_WORDS or w in _SIZE_WORDS for w in plain) and (
        bool(attrs.grades or attrs.colours or attrs.measures) or any(w in _SIZE_WORDS for w in attrs.words)
    )


def _joins_better(first: list[str], second: list[str], catalog: CatalogIndex) -> bool:
    """Whether two pieces' words name an item better together than the second does alone."""
    together = catalog.match(" ".join([*first, *second]))
    return together.status == "match" and _better(together, catalog.match(" ".join(second)))


def _joined(first: list[str], second: list[str]) -> _Seg:
    """Two pieces as one segment; a statement only if both were, the purpose tail of the later one."""
    seg = _Seg([*first, *second])
    seg.statement = getattr(first, "statement", False) and getattr(second, "statement", False)
    seg.tail = getattr(second, "tail", ()) or getattr(first, "tail", ())
    return seg


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
    said: list[list[str]] = []  # the words of each line's segment
    for seg in _segments(prepared, catalog):
        parsed = _parse_item(seg, catalog)
        if parsed is None:
            continue
        if parsed.line is not None:
            result.lines.append(parsed.line)
            said.append(seg)
        if parsed.unresolved:
            result.unresolved.append(parsed.unresolved)
    for k, free in _lesser_mentions(result.lines, said, catalog).items():
        result.lines[k] = free
        result.unresolved.append(free.description)
    result.lines = [_settled_by_neighbours(line, result.lines, catalog) for line in result.lines]
    return result


def _lesser_mentions(lines: list[Line], said: list[list[str]], catalog: CatalogIndex) -> dict[int, Line]:
    """Lines that reached the same item as another line of the message while naming less of it: free text.

    "6 pillows and 12 pillow cases": both reach ``PILLOW CASE``; the pillow cases name all its product words,
    the pillows do not, so the pillows are something else (a free-text line), never 18 pillow cases.
    """
    by_sku: dict[str, list[int]] = {}
    for k, line in enumerate(lines):
        if line.sku:
            by_sku.setdefault(line.sku, []).append(k)
    out: dict[int, Line] = {}
    for sku, ks in by_sku.items():
        item = catalog.get(sku)
        if len(ks) < 2 or item is None:
            continue
        product = set(item_attributes(item).words)
        named = {k: len(product & {singular(t) for t in tokens(" ".join(said[k]))}) for k in ks}
        if max(named.values()) < len(product):
            continue
        for k in ks:
            if named[k] < len(product):
                qty, rest = _item_words(said[k], catalog)
                words = " ".join(rest) or lines[k].description
                unit = (qty.unit if qty is not None else None) or UNSPECIFIED_UNIT
                value = qty.value if qty is not None else lines[k].quantity
                out[k] = Line(description=words, quantity=value, unit=unit, confidence=FREE_TEXT_CONFIDENCE)
    return out


def _settled_by_neighbours(line: Line, lines: list[Line], catalog: CatalogIndex) -> Line:
    """An ambiguous line settled by the other items asked for with it.

    "100 paper cups and 50 lids for them": of the lids, only ``LIDS FOR PAPER CUPS`` names the cups of the other
    line; that candidate is taken (quantity and unit converted as for a direct match).
    """
    if line.sku is not None or len(line.candidates) < 2:
        return line
    others = [catalog.get(ln.sku) for ln in lines if ln is not line and ln.sku]
    other_words = [set(item_attributes(o).words) for o in others if o is not None]
    if not other_words:
        return line
    fits = []
    for sku in line.candidates:
        item = catalog.get(sku)
        if item is not None:
            mine = set(item_attributes(item).words)
            if any(len(mine & words) >= 2 for words in other_words):
                fits.append(item)
    if len(fits) != 1:
        return line
    unit = None if line.unit == UNSPECIFIED_UNIT else line.unit
    return _line_for_item(fits[0], line.quantity, unit, CHECK_CONFIDENCE + 0.1)
