"""Pure operations on the draft kept in State (used by the rule path and by the LLM tools alike).

A draft is a :class:`core.domain.Draft` (lines as :class:`core.domain.LineDict`, dates as ISO strings). Each
function returns a NEW draft (State updates must not mutate the checkpointed value in place).
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.domain import Draft, DraftSnapshot, Line
from tools.extraction import Edit


def empty_draft() -> Draft:
    """A draft with nothing in it."""
    return {"lines": [], "site": None, "needed_by": None, "notes": [], "attachments": [], "request_id": None}


def lines_of(draft: Draft | DraftSnapshot | None) -> list[Line]:
    """The draft's lines as :class:`~core.domain.Line` objects."""
    return [Line.from_dict(d) for d in (draft or {}).get("lines", [])]


def needed_by_of(draft: Draft | None) -> date | None:
    """The draft's needed-by date."""
    v = (draft or {}).get("needed_by")
    return date.fromisoformat(v) if v else None


def with_lines(draft: Draft | None, lines: list[Line]) -> Draft:
    """Copy of ``draft`` with ``lines``."""
    d = copy.deepcopy(draft) if draft else empty_draft()
    d["lines"] = [ln.to_dict() for ln in lines]
    return d


def add_lines(draft: Draft | None, new: list[Line]) -> Draft:
    """Append lines; a line for a SKU already in the draft with the same unit adds to its quantity."""
    lines = lines_of(draft)
    for ln in new:
        same = next((x for x in lines if ln.sku and x.sku == ln.sku and x.unit == ln.unit), None)
        if same is not None:
            same.quantity += ln.quantity
        else:
            lines.append(ln)
    return with_lines(draft, lines)


def accept_proposal(lines: list[Line], catalog: Any) -> dict[str, Any] | None:
    """Apply the first open quantity proposal in place (the whole number of catalogue units offered).

    Args:
        lines: the draft's lines (changed in place).
        catalog: the catalogue index (``get(sku)``).

    Returns:
        The change log entry ``{"op": "set_quantity", "line", "quantity", "unit"}``, or ``None`` when no line
        carries a proposal.
    """
    for idx, ln in enumerate(lines):
        item = catalog.get(ln.sku) if ln.sku and ln.proposal else None
        if item is None or ln.proposal is None:
            continue
        ln.asked = f"{ln.quantity.normalize():f} {ln.unit}"
        ln.quantity, ln.unit, ln.unit_price = Decimal(ln.proposal), item.unit, item.unit_price
        ln.proposal, ln.confidence = None, 1.0
        return {"op": "set_quantity", "line": idx, "quantity": str(ln.quantity), "unit": ln.unit}
    return None


def idle_hours(draft: Draft | None, now: datetime) -> float:
    """Hours since the draft was last changed (``touched_at``, ISO time), ``0.0`` when it has no stamp."""
    stamp = (draft or {}).get("touched_at")
    if not stamp:
        return 0.0
    return max(0.0, (now - datetime.fromisoformat(stamp)).total_seconds() / 3600.0)


def snapshot(draft: Draft | None) -> DraftSnapshot:
    """The parts of a draft kept aside while the person chooses what to do with it (lines, site, date, stamp)."""
    d: Draft = draft or {}
    return {
        "lines": copy.deepcopy(d.get("lines") or []),
        "site": d.get("site"),
        "needed_by": d.get("needed_by"),
        "touched_at": d.get("touched_at"),
    }


ADDITIVE_CUES = ("add", "also", "more", "plus", "another", "extra", "additional", "ongeza", "zaidi")


def merge_lines(draft: Draft | None, new: list[Line], *, additive: bool) -> tuple[Draft, list[dict[str, Any]]]:
    """Fold newly read lines into the draft: a line for a SKU already there is a correction.

    With ``additive`` (the message said "add", "also", "more"...) the quantities add up; otherwise the new
    quantity replaces the old one ("sugar 6 packs" after "4 packs of sugar"). Other lines are appended.

    Returns:
        The new draft and a change log for the audit.
    """
    lines = lines_of(draft)
    log: list[dict[str, Any]] = []
    for ln in new:
        same = next((x for x in lines if ln.sku and x.sku == ln.sku and x.unit == ln.unit), None)
        if same is None:
            lines.append(ln)
            log.append({"op": "add", "after": ln.to_dict()})
            continue
        before = same.to_dict()
        same.quantity = same.quantity + ln.quantity if additive else ln.quantity
        log.append({"op": "add_quantity" if additive else "set_quantity", "before": before, "after": same.to_dict()})
    return with_lines(draft, lines), log


def set_field(draft: Draft | None, **values: Any) -> Draft:
    """Copy of ``draft`` with top-level fields set (dates as ISO strings).

    Raises:
        KeyError: a name that is not a :class:`~core.domain.Draft` field.
    """
    d = copy.deepcopy(draft) if draft else empty_draft()
    for k, v in values.items():
        if k not in Draft.__annotations__:
            raise KeyError(f"not a draft field: {k}")
        d[k] = v.isoformat() if isinstance(v, date) else v  # type: ignore[literal-required]
    return d


def apply_edits(draft: Draft | None, edits: list[Edit]) -> tuple[Draft, list[dict[str, Any]]]:
    """Apply parsed corrections in order; returns the new draft and a JSON-safe change log for the audit."""
    lines = lines_of(draft)
    d = copy.deepcopy(draft) if draft else empty_draft()
    log: list[dict[str, Any]] = []
    removed: set[int] = set()
    for e in edits:
        if e.op in ("set_quantity", "replace_item") and e.index is not None and e.line is not None:
            if 0 <= e.index < len(lines):
                log.append({"op": e.op, "before": lines[e.index].to_dict(), "after": e.line.to_dict()})
                lines[e.index] = e.line
        elif e.op == "remove" and e.index is not None and 0 <= e.index < len(lines):
            log.append({"op": "remove", "before": lines[e.index].to_dict()})
            removed.add(e.index)
        elif e.op == "add" and e.line is not None:
            log.append({"op": "add", "after": e.line.to_dict()})
            lines.append(e.line)
        elif e.op == "set_site" and e.site:
            log.append({"op": "set_site", "before": d.get("site"), "after": e.site})
            d["site"] = e.site
        elif e.op == "set_needed_by" and e.needed_by:
            log.append({"op": "set_needed_by", "before": d.get("needed_by"), "after": e.needed_by.isoformat()})
            d["needed_by"] = e.needed_by.isoformat()
    kept = [ln for i, ln in enumerate(lines) if i not in removed]
    d["lines"] = [ln.to_dict() for ln in kept]
    return d, log
