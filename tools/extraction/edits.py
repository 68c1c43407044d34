"""Corrections to a draft ("make the paper 30", "drop the toner", "the 26X") read into :class:`Edit` operations."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from core.domain import Line
from tools.catalog import CatalogIndex
from tools.extraction.choices import choice_edits
from tools.extraction.edit_ops import _ADDITIVE_WORDS, _CLAUSE_STARTS, _KEEP_REST_RE, _NOT_FIRST_RE, _SET_CUES, Edit
from tools.extraction.edit_readers import (
    _edit_add,
    _edit_answer,
    _edit_back,
    _edit_count_of_added,
    _edit_quantity,
    _edit_remove,
    _edit_replace,
    _line_index,
    _quantity_in,
)
from tools.extraction.lexicon import _NOISE, _NUM_RE, _SOFT_CUES
from tools.extraction.places import _find_date, _find_site
from tools.extraction.quantities import (
    _number_at,
    _prepare,
    _tokenize,
)
from tools.extraction.segments import _is_statement
from tools.extraction.units import tidy


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


# "double that", "triple the eggs", "halve the rice", "mara mbili" (twice): the amount times a factor
_FACTORS = {"double": Decimal(2), "triple": Decimal(3), "treble": Decimal(3), "halve": Decimal("0.5"),
            "quadruple": Decimal(4)}  # fmt: skip


def _edit_multiply(words: list[str], draft: list[Line], catalog: CatalogIndex) -> list[Edit] | None:
    """The named line (or the only one) with its amount multiplied: "double that", "triple the eggs"."""
    if words[:1] and words[0] in _FACTORS:
        factor, ref = _FACTORS[words[0]], words[1:]
    elif words[-2:] == ["mara", "mbili"]:
        factor, ref = Decimal(2), words[:-2]
    else:
        return None
    index = _line_index(ref, draft, catalog) if ref else (0 if len(draft) == 1 else None)
    if index is None:
        return None
    line = draft[index]
    value = line.quantity * factor
    if value != value.to_integral_value() and line.sku is not None:
        return None  # half of 5 bags is no whole number of bags: left to a question
    return [Edit("set_quantity", index=index, line=dataclasses.replace(line, quantity=tidy(value)))]


def _unchanged_amount(words: list[str], draft: list[Line]) -> bool:
    """Whether the words say an amount stays ("still 4", "bado 4", "same 4"): equal to a line's own amount."""
    if words[:1] not in (["still"], ["bado"], ["same"]) or len(words) < 2:
        return False
    number = _number_at(words, 1)
    return number is not None and number[1] == len(words) - 1 and any(ln.quantity == number[0] for ln in draft)


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
    # "ten bags should do, thanks": a clause of thanks or fillers alone does not make the answer two clauses
    single = sum(1 for c in _clauses(prepared) if not all(t in _NOISE or t in _POLITE for t in c)) == 1
    additive = bool(set(_tokenize(prepared)) & _ADDITIVE_WORDS)
    # "no, the large gloves", "hapana, ...": an opening "no" makes the whole message a correction
    opening = _tokenize(prepared)[:1]
    corrective = bool(opening) and opening[0] in ("no", "nope", "hapana", "sorry", "samahani", "actually", "oops")
    for clause in _clauses(prepared):
        if all(t in _NOISE or t in _SOFT_CUES or t == "not" for t in clause):
            continue
        # "the large gloves" (no amount): the definite article points at a line already there
        definite = clause[:1] == ["the"] and _quantity_in(clause, catalog) is None
        soft = corrective or definite or any(t in _SOFT_CUES for t in clause)
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
        if _unchanged_amount(words, draft_lines):
            continue  # "..., still 4": the amount the line already has stays
        parsed: list[Edit] | None = _edit_back(words, catalog)
        if parsed is None and draft_lines:
            parsed = _edit_multiply(words, draft_lines, catalog)
        if parsed is None and previous == "add":
            parsed = _edit_count_of_added(words, edits, catalog)
            if parsed is not None:
                edits.pop()
        if parsed is None and draft_lines and not additive:
            parsed = choice_edits(words, draft_lines, catalog)
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
        if parsed is None and previous == "replace_item" and _quantity_in(words, catalog) is None:
            continue  # "for the hilux 2kd, the double cabs": more words about the choice just made
        if parsed is None:
            return []
        previous = intent or parsed[0].op
        edits.extend(parsed)
    return _first_choice_per_line(edits)


_POLITE = frozenset({"thanks", "thank", "you", "thx", "asante", "sana", "cheers", "regards", "welcome", "god", "bless"})


def _first_choice_per_line(edits: list[Edit]) -> list[Edit]:
    """Edits with only the first item choice per line: "medium pls, the large ones are too big" chose medium."""
    seen: set[int] = set()
    out: list[Edit] = []
    for e in edits:
        if e.op == "replace_item" and e.index is not None:
            if e.index in seen:
                continue
            seen.add(e.index)
        out.append(e)
    return out
