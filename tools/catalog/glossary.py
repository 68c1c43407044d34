"""Words staff write that item masters do not: Swahili nouns, colours and trade names, read into catalogue words.

Item masters are written in English ERP shorthand; staff write "mifuko kumi ya simiti", "rangi nyeupe", "black
biros", "panadol". ``glossary.tsv`` beside this module (see ``glossary.md``) is general language knowledge, not a
catalogue: a word maps to the English words an item master would use. A word is read through the glossary only
when the catalogue does not know it already, and only into meanings whose words the catalogue does know, so the
item master always has the last word (a catalogue that says MABATI is matched on MABATI).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tools.catalog.text import singular, tokens

GLOSSARY_PATH = Path(__file__).with_name("glossary.tsv")
KINDS = ("sw", "colour", "syn")


class GlossaryError(ValueError):
    """The glossary file is malformed (wrong header, a row without three fields, an unknown kind)."""


@dataclass(frozen=True)
class Glossary:
    """Meanings per word, in file order.

    Attributes:
        meanings: ``{"simiti": (("cement",),), "mabati": (("iron", "sheet"), ("roofing", "sheet"))}``.
        colours: words that are colours, with the English colour (``{"nyeupe": "white"}``).
    """

    meanings: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)

    def readings(self, word: str, vocabulary: frozenset[str] | set[str]) -> list[tuple[str, ...]]:
        """The meanings of ``word`` whose every word the catalogue knows (``[]`` when it knows ``word`` itself).

        Args:
            word: one lower-case token as the person wrote it (singular or plural form).
            vocabulary: the catalogue's tokens.
        """
        if word in vocabulary or singular(word) in vocabulary:
            return []
        found = self.meanings.get(word) or self.meanings.get(singular(word)) or ()
        return [m for m in found if m and all(t in vocabulary for t in m)]


def parse_glossary(text: str) -> Glossary:
    """Parse glossary TSV text: a ``word<TAB>meaning<TAB>kind`` header, then one row per meaning.

    Raises:
        GlossaryError: a wrong header, a row without exactly three fields, an empty field, or an unknown kind.
    """
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or [c.strip().lower() for c in rows[0]] != ["word", "meaning", "kind"]:
        raise GlossaryError("the first line must be the header: word, meaning, kind (tab-separated)")
    meanings: dict[str, list[tuple[str, ...]]] = {}
    colours: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if len(row) != 3 or not all(c.strip() for c in row):
            raise GlossaryError(f"line {n}: expected three non-empty tab-separated fields, got {row!r}")
        word, meaning, kind = (c.strip().lower() for c in row)
        if kind not in KINDS:
            raise GlossaryError(f"line {n}: kind {kind!r} is not one of {', '.join(KINDS)}")
        words = tuple(tokens(meaning))  # the catalogue's own token forms ("iron sheets" -> iron, sheet)
        if kind == "colour":
            colours.setdefault(word, meaning)
        known = meanings.setdefault(word, [])
        if words not in known:
            known.append(words)
    return Glossary({w: tuple(m) for w, m in meanings.items()}, colours)


@lru_cache(maxsize=4)
def load_glossary(path: Path = GLOSSARY_PATH) -> Glossary:
    """The glossary in ``path`` (the bundled one by default), read once; an absent file is an empty glossary.

    Raises:
        GlossaryError: the file is malformed.
    """
    if not path.exists():
        return Glossary()
    return parse_glossary(path.read_text(encoding="utf-8"))


def translated(
    words: Sequence[str], vocabulary: frozenset[str] | set[str], glossary: Glossary | None = None
) -> list[str]:
    """``words`` with each word the catalogue does not know replaced by its first meaning the catalogue knows.

    ``["simiti", "42.5"]`` -> ``["cement", "42.5"]``; ``["rangi", "nyeupe"]`` -> ``["paint", "white"]``; words
    the catalogue knows, numbers and words without a known meaning are kept as they are.
    """
    g = glossary if glossary is not None else load_glossary()
    out: list[str] = []
    for w in words:
        readings = g.readings(w, vocabulary) if w.isalpha() else []
        out.extend(readings[0] if readings else [w])
    return out
