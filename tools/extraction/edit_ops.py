"""Draft corrections as data: :class:`Edit` operations and the cue words that signal each kind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from core.domain import Line

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
     "adjust", "correct", "edit", "put", "up", "badilisha", "weka", "punguza"}
)  # fmt: skip


_ADD_CUES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in [
        "and also", "add", "also", "plus", "and", "include", "including", "with", "another", "extra", "ongeza",
    ]
)  # fmt: skip


_CLAUSE_STARTS = frozenset(
    {"the", "also", "add", "plus", "include", "no", "not", "deliver", "send", "by", "then", "make", "change",
     "drop", "remove", "delete", "cancel", "scrap", "skip", "forget", "set", "update", "increase", "reduce",
     "decrease", "raise", "lower", "swap", "switch", "replace", "only", "just", "we", "i", "don't", "dont"}
)  # fmt: skip


_ADDITIVE_WORDS = frozenset({"add", "also", "more", "plus", "another", "extra", "additional", "ongeza", "zaidi"})


_REMOVE_TAIL = frozenset({"anymore", "any", "more", "please", "pls", "from", "list", "order", "request", "the"})


_SET_FILLERS = frozenset(
    {"to", "=", "into", "be", "should", "is", "iwe", "ziwe", "kuwa", "down", "up", "ni", "it's", "its"}
)


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
# "not 26a, 26x", "si mbili, ni tatu", "sio 2 ni 3" ("not two, (it) is three"): the thing negated comes first
_NOT_FIRST_RE = re.compile(
    r"^\s*(?:(?:no|sorry|oops|actually|wait|oh|hapana|samahani)[,\s]+)*(?:not|si|sio|siyo)\s+([^,]+?)"
    r"(?:\s*,\s*(?:(?:ni|it'?s|it\s+is|but|bali)\s+)?|\s+(?:ni|bali)\s+)(.+)$"
)
