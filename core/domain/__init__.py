"""Domain types shared by every layer: roles, money, catalogue items, lines, and the graphs' JSON State records.

:mod:`core.domain.records` holds the domain objects (``Decimal`` money, :class:`Line`...);
:mod:`core.domain.state` holds their JSON-safe forms as the graphs checkpoint them (:class:`Draft`,
:class:`LineDict`, :class:`Inbound`, :class:`Effect`...) and the :class:`State` and :class:`ApprovalState`
the graphs are built on. Every name is re-exported here: ``from core.domain import Line, Draft``.
"""

from core.domain.records import CatalogItem, ExtractionResult, Line, Money, RequestStatus, Role, plain
from core.domain.state import (
    WINDOW_CAP,
    ApprovalAnswer,
    ApprovalState,
    Awaiting,
    Draft,
    DraftSnapshot,
    Effect,
    EffectType,
    Inbound,
    LineDict,
    Slot,
    State,
    WindowEntry,
    window_reducer,
)

__all__ = [
    "WINDOW_CAP",
    "ApprovalState",
    "Awaiting",
    "CatalogItem",
    "ApprovalAnswer",
    "Draft",
    "DraftSnapshot",
    "Effect",
    "EffectType",
    "ExtractionResult",
    "Inbound",
    "Line",
    "LineDict",
    "Money",
    "RequestStatus",
    "Role",
    "Slot",
    "State",
    "WindowEntry",
    "plain",
    "window_reducer",
]
