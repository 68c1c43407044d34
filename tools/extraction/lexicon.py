"""Shared vocabulary of the request reader: confidence levels, filler phrases, cue words, token patterns."""

from __future__ import annotations

import re

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


# "of" between an amount and the item: English, and Swahili noun-class forms ("mifuko kumi ya simenti").
OF_WORDS = frozenset({"of", "ya", "za", "la", "cha", "vya", "wa"})


_NOT_A_COUNT = frozenset({"few", "lot", "lots", "bit", "little", "bunch"})  # "a few" is no count


_FILLER_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in sorted(
        [
            "hi", "hello", "hey", "dear", "habari", "jambo", "good morning", "good afternoon", "good evening",
            "morning", "team", "sir", "madam", "boss", "guys", "all", "pls", "plz", "please", "kindly",
            "tafadhali", "naomba", "tunahitaji", "nahitaji", "tuma", "we need", "i need", "we will need",
            "need", "needs", "needed", "requires", "wants", "we want", "i want", "want", "send", "send us", "us", "get", "get us", "me",
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
            "asante", "sasa", "basi", "anyway", "anyways", "btw", "lol", "haha", "okay then",
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


_REFERENCE_WORDS = frozenset({"one", "ones", "kind", "type", "size", "sized", "variety", "version", "sort"})


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


_CHATTER_MAX = 4


# strong ones ("no wait", "I mean") replace it.
_WEAK_CORRECTIONS = frozenset({("sorry",), ("actually",), ("wait",), ("oops",), ("correction",)})


_REMARK_RE = re.compile(r"\(([^()]*)\)")


_REMARK_MIN_WORDS = 4


# A token: a number (decimals, fraction) with an optional glued suffix ("42.5n", "26/6", "2.5mm", "5kg"),
# or a word with letters and digits ("cf226a", "a4") and an optional apostrophe ("don't").
_TOKEN_RE = re.compile(r"\d+(?:[./-]\d+)*[a-z0-9]*|[a-z0-9]+(?:'[a-z]+)?")


_NUM_RE = re.compile(r"\d+(?:\.\d+)?")


_GLUED_RE = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")


_X_NUM_RE = re.compile(r"x(\d+(?:\.\d+)?)")


_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022\u00b7>]+|\(?[a-z]\)|\d+[.)])\s+", re.MULTILINE)


_SOFT_CUES = frozenset(
    {"instead", "actually", "only", "just", "rather", "sorry", "correction", "oops", "meant", "mean", "samahani"}
)


_NOISE = frozenset(
    {"actually", "instead", "rather", "sorry", "oh", "ok", "okay", "wait", "pls", "please", "kindly", "no", "hapana",
     "change", "the", "site", "location", "delivery", "date", "deliver", "send", "it", "to", "make", "that",
     "update", "switch", "thanks", "thank", "you", "correction", "oops", "i", "mean", "meant", "we", "let's",
     "lets", "go", "with", "take", "one", "ones", "but", "then", "needed", "need", "by", "for",
     "hey", "hi", "also", "and", "now", "should", "be", "is", "set", "it's", "its", "that's", "thats"}
)  # fmt: skip


_REF_PRONOUNS = frozenset({"it", "that", "this", "them", "those", "these", "one", "same", "quantity", "qty"})
