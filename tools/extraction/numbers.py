"""Numbers written in words, in English and Swahili: "twenty five", "a hundred", "sabini", "mia mbili na hamsini".

Swahili numbers follow the noun they count ("mifuko sabini" = 70 bags) and compose with ``na`` ("and"):
``elfu moja mia tano`` = 1500, ``ishirini na tano`` = 25, ``mbili na nusu`` = 2.5. Source: standard Swahili
numerals (Ashton, *Swahili Grammar*, ch. on numerals). No product vocabulary lives here.
"""

from __future__ import annotations

from decimal import Decimal

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
SW_ONES = {
    "moja": 1, "mbili": 2, "tatu": 3, "nne": 4, "tano": 5, "sita": 6, "saba": 7, "nane": 8, "tisa": 9,
    # 1-5 and 8 agree with the noun's class: mifuko miwili (2 bags), watu watatu, vitu vinne, ndoo mbili
    "mmoja": 1, "mojawapo": 1, "miwili": 2, "wawili": 2, "viwili": 2, "mawili": 2, "mitatu": 3, "watatu": 3,
    "vitatu": 3, "matatu": 3, "minne": 4, "wanne": 4, "vinne": 4, "manne": 4, "mitano": 5, "watano": 5,
    "vitano": 5, "matano": 5, "minane": 8, "wanane": 8, "vinane": 8, "manane": 8,
}  # fmt: skip
SW_TENS = {
    "kumi": 10, "ishirini": 20, "thelathini": 30, "arobaini": 40, "arubaini": 40, "hamsini": 50, "sitini": 60,
    "sabini": 70, "themanini": 80, "tisini": 90,
}  # fmt: skip
EN_FRACTIONS = {"half": Decimal("0.5"), "quarter": Decimal("0.25")}
SW_FRACTIONS = {"nusu": Decimal("0.5"), "robo": Decimal("0.25")}
SWAHILI_WORDS = frozenset({*SW_ONES, *SW_TENS, *SW_FRACTIONS, "mia", "elfu"})
"""Every Swahili number word (for callers that must not read them as item words)."""


def _sw_below_100(toks: list[str], j: int) -> tuple[int, int] | None:
    """``kumi na mbili`` / ``sabini`` / ``tano`` at ``toks[j]``: (value, next index)."""
    t = toks[j] if j < len(toks) else ""
    if t in SW_TENS:
        value = SW_TENS[t]
        if toks[j + 1 : j + 2] == ["na"] and toks[j + 2 : j + 3] and toks[j + 2] in SW_ONES:
            return value + SW_ONES[toks[j + 2]], j + 3
        return value, j + 1
    if t in SW_ONES:
        return SW_ONES[t], j + 1
    return None


def _sw_multiple(toks: list[str], j: int, word: str) -> tuple[int, int] | None:
    """``mia mbili`` (200) or ``elfu tatu`` (3000) at ``toks[j]``: (multiplier count, next index)."""
    if toks[j : j + 1] != [word]:
        return None
    count = _sw_below_100(toks, j + 1)
    if count is None:
        return 1, j + 1  # "mia" alone is a hundred
    return count[0], count[1]


def _skip_na(toks: list[str], j: int) -> int:
    """Index after an ``na`` that joins two parts of a number, when another number part follows it."""
    if toks[j : j + 1] == ["na"] and j + 1 < len(toks) and (toks[j + 1] in SWAHILI_WORDS):
        return j + 1
    return j


def swahili_number(toks: list[str], i: int) -> tuple[Decimal, int] | None:
    """A Swahili number at ``toks[i]``: (value, tokens used), or ``None``.

    Args:
        toks: lower-case word tokens.
        i: where the number may start.

    Returns:
        ``(Decimal(1500), 4)`` for ``["elfu", "moja", "mia", "tano", ...]``; ``(Decimal("2.5"), 3)`` for
        ``["mbili", "na", "nusu"]``; ``(Decimal("0.5"), 1)`` for ``["nusu"]``.
    """
    j, total, seen = i, 0, False
    thousands = _sw_multiple(toks, j, "elfu")
    if thousands is not None:
        total, j, seen = thousands[0] * 1000, thousands[1], True
        j = _skip_na(toks, j)
    hundreds = _sw_multiple(toks, j, "mia")
    if hundreds is not None:
        total, j, seen = total + hundreds[0] * 100, hundreds[1], True
        j = _skip_na(toks, j)
    rest = _sw_below_100(toks, j)
    if rest is not None:
        total, j, seen = total + rest[0], rest[1], True
    value = Decimal(total)
    if seen and toks[j : j + 2] and toks[j] == "na" and toks[j + 1 : j + 2] and toks[j + 1] in SW_FRACTIONS:
        value, j = value + SW_FRACTIONS[toks[j + 1]], j + 2
    elif not seen and j < len(toks) and toks[j] in SW_FRACTIONS:
        value, j, seen = SW_FRACTIONS[toks[j]], j + 1, True
    if not seen:
        return None
    if j > i and toks[j - 1] == "na":
        j -= 1
    return value, j - i


def english_number(toks: list[str], i: int) -> tuple[Decimal, int] | None:
    """An English number in words at ``toks[i]`` ("twenty five", "two hundred and fifty"): (value, tokens used)."""
    total = 0
    current = 0
    j = i
    seen = False
    while j < len(toks):
        t = toks[j]
        if t in ONES and (current % 10 == 0 or current >= 100) and not (seen and current % 100 and current < 20):
            current += ONES[t]
        elif t in TENS and current % 100 == 0:
            current += TENS[t]
        elif t == "hundred" and (seen or j == i):
            current = (current or 1) * 100
        elif t == "thousand" and (seen or j == i):
            total += (current or 1) * 1000
            current = 0
        elif t == "and" and seen and j + 1 < len(toks) and (toks[j + 1] in ONES or toks[j + 1] in TENS):
            j += 1
            continue
        else:
            break
        seen = True
        j += 1
    if not seen:
        return None
    value = Decimal(total + current)
    # "one and a half", "two and a quarter": a fraction joined by "and a"
    if toks[j : j + 2] == ["and", "a"] and j + 2 < len(toks) and toks[j + 2] in EN_FRACTIONS:
        value, j = value + EN_FRACTIONS[toks[j + 2]], j + 3
    return value, j - i


def number_word(toks: list[str], i: int) -> tuple[Decimal, int] | None:
    """An English or Swahili number in words at ``toks[i]``: (value, tokens used), or ``None``."""
    return english_number(toks, i) or swahili_number(toks, i)
