"""Text normalisation shared by the catalogue index and the attribute parser: tokens, singulars, code shapes.

Only general language lives here (stopwords, English plural rules, measure-unit spellings); no product words.
"""

from __future__ import annotations

import re

# Words that carry no product meaning in a catalogue query.
STOPWORDS = frozenset(
    {
        "a", "an", "the", "of", "for", "and", "with", "to", "in", "on", "some", "my", "our", "your",
        "any", "pls", "please", "this", "that", "these", "those", "it", "is", "are", "we", "i", "us",
    }
)  # fmt: skip

_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[a-z]")
_KEEP_PUNCT = re.compile(r"(?<=\d)([./-])(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

_IRREGULAR = {
    "mice": "mouse", "knives": "knife", "leaves": "leaf", "feet": "foot", "teeth": "tooth", "loaves": "loaf",
    "halves": "half", "shelves": "shelf", "wives": "wife", "calves": "calf",
}  # fmt: skip


def singular(word: str) -> str:
    """Return a simple singular of an English plural (``boxes`` -> ``box``, ``batteries`` -> ``battery``).

    Words with digits and words of three letters or fewer are kept as they are (but ``mice`` -> ``mouse``).
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or _DIGIT.search(word):
        return word
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_SIZE_UNITS = {
    "g": "g", "gr": "g", "gram": "g", "grams": "g", "kg": "kg", "kgs": "kg", "ml": "ml", "l": "l", "ltr": "l",
    "litre": "l", "litres": "l", "liter": "l", "liters": "l", "gb": "gb", "gig": "gb", "gigs": "gb", "mm": "mm",
    "cm": "cm",
}  # fmt: skip
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_SIZE_UNITS, key=len, reverse=True)) + r")\b")


def tokens(text: str) -> list[str]:
    """Normalise text into matching tokens.

    Lower case; punctuation becomes a space except ``.``, ``/`` and ``-`` between digits (``42.5n``, ``26/6``,
    a tyre size ``3.00-18``, a part number ``04465-0k240``);
    stopwords are dropped; simple plurals are singularised; a size is one token (``500 g`` -> ``500g``).

    Args:
        text: any text (a query, a name, an alias).

    Returns:
        The tokens, in order (may be empty).
    """
    text = _SIZE.sub(lambda m: m.group(1) + _SIZE_UNITS[m.group(2)], text.lower())
    s = _KEEP_PUNCT.sub(lambda m: {".": "\x00", "/": "\x01"}.get(m.group(1), "\x02"), text)
    s = re.sub(r"[^a-z0-9\x00\x01\x02]+", " ", s).replace("\x00", ".").replace("\x01", "/").replace("\x02", "-")
    return [singular(t) for t in s.split() if t not in STOPWORDS]


def is_code(token: str) -> bool:
    """Return ``True`` for a product-code-like token: letters and digits (``26a``, ``a4``), or ``26/6``."""
    return bool(_DIGIT.search(token)) and (bool(_LETTER.search(token)) or "/" in token)


def is_number(token: str) -> bool:
    """Return ``True`` for a bare number (``12``, ``42.5``)."""
    return bool(_NUMBER.fullmatch(token))


def has_digit(token: str) -> bool:
    """Return ``True`` when the token contains a digit."""
    return bool(_DIGIT.search(token))
