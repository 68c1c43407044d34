"""Sites and dates named in a message: the delivery site, "by friday", "28/11", Swahili day names."""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from dateparser.date import DateDataParser
from rapidfuzz.distance import OSA

from tools.catalog import CatalogIndex
from tools.extraction.lexicon import _TOKEN_RE
from tools.extraction.numbers import ONES
from tools.extraction.quantities import _tokenize

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


_NUMWORD = "|".join([*ONES, "a", "an"])


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


_SWAHILI_DATES = {
    "jumatatu": "monday", "jumanne": "tuesday", "jumatano": "wednesday", "alhamisi": "thursday",
    "ijumaa": "friday", "jumamosi": "saturday", "jumapili": "sunday", "wiki ijayo": "next week",
    "kesho kutwa": "day after tomorrow", "mwisho wa mwezi": "end of month", "mwisho wa wiki": "end of week",
}  # fmt: skip


_SWAHILI_DATE_RE = re.compile(r"\b(?:" + "|".join(sorted(_SWAHILI_DATES, key=len, reverse=True)) + r")\b")


# A date phrase right after these is the one being replaced ("not friday, monday").
_NEGATED_DATE_RE = re.compile(r"\b(?:not|instead\s+of|rather\s+than)\s*$")


_DEADLINE_RE = re.compile(
    r"\s*(?:(?:needed|required|delivered|deliver(?:y)?|need\s+it|latest)\s+)?(?:by|before|until|till|due|latest|not\s+later\s+than)\b"
)
_DATE_SETTINGS: dict[str, Any] = {"PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY"}


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
        count = int(amount) if amount.isdigit() else (ONES.get(amount) or 1)
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
    text_before = text
    for start, end, _ in found:
        text = _blank(text, start, end)
    chosen = [(start, resolved) for start, _, resolved in found if resolved is not None]
    # "we are 14 in the workshop today ... by friday": a deadline phrase wins over a date said in passing
    deadline = [
        (start, resolved)
        for start, end, resolved in found
        if resolved is not None and _DEADLINE_RE.match(text_before[start:end])
    ]
    if deadline:
        chosen = deadline
    return (min(chosen)[1] if chosen else None), text
