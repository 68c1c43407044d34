"""Deterministic policy: completeness of a draft, approval routing, separation of duties.

Nothing here calls an LLM or the network; every rule is a pure function so it can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.domain import Line, Money, Role

#: Lines below this confidence are not accepted silently: the person is asked.
CONFIDENCE_ASK = 0.6


@dataclass(frozen=True, slots=True)
class Approver:
    """A candidate approver: user id, role, site and approval limit (``None``: no limit set)."""

    id: int
    role: Role
    site: str | None
    approval_limit: Money | None
    name: str = ""


def missing_fields(lines: Sequence[Line], site: str | None, needed_by: date | None, *, today: date) -> list[str]:
    """What a draft still needs before it can be submitted, in the order to ask.

    Returns question kinds: ``clarify_item`` (a line with several catalogue candidates), ``quantity`` (a line
    whose unit could not be converted to the catalogue unit), ``lines`` (no line at all), ``site``,
    ``needed_by`` (missing or in the past). Free-text lines (not in the catalogue) do not block: they are
    marked in the summary and confirmed with the rest (see :func:`free_text_lines`).
    """
    out: list[str] = []
    if not lines:
        out.append("lines")
    for ln in lines:
        if ln.sku is None and ln.candidates:
            out.append("clarify_item")
            break
    for ln in lines:
        if ln.sku is not None and ln.unit_price is None and ln.confidence < CONFIDENCE_ASK:
            out.append("quantity")
            break
    if not site:
        out.append("site")
    if needed_by is None or needed_by < today:
        out.append("needed_by")
    return out


def free_text_lines(lines: Sequence[Line]) -> list[Line]:
    """Lines not in the catalogue (no SKU, no candidates): kept, marked and confirmable with the rest."""
    return [ln for ln in lines if ln.sku is None and not ln.candidates]


def total_of(lines: Sequence[Line], currency: str) -> Money:
    """Sum of priced lines in ``currency`` (lines in another currency or unpriced are left out)."""
    total = Money(Decimal("0"), currency)
    for ln in lines:
        t = ln.total
        if t is not None and t.currency == currency:
            total = total + t
    return total.quantize()


class NoApproverError(LookupError):
    """No one may approve this request (no approver or admin other than the requester)."""


def choose_approver(candidates: Sequence[Approver], *, requester_id: int, site: str | None, total: Money) -> Approver:
    """Pick who approves a request.

    Rule: among approvers for the request's site (or with no site, i.e. company-wide) whose limit covers the
    total in the same currency, the one with the LOWEST sufficient limit (ties: lowest id); above every limit,
    an admin (same site first). The requester is never chosen (separation of duties).

    Raises:
        NoApproverError: nobody but the requester could approve it.
    """
    others = [c for c in candidates if c.id != requester_id]

    def site_ok(c: Approver) -> bool:
        return c.site is None or site is None or c.site.lower() == site.lower()

    sufficient = [
        c
        for c in others
        if c.role == Role.APPROVER
        and site_ok(c)
        and c.approval_limit is not None
        and c.approval_limit.currency == total.currency
        and c.approval_limit.amount >= total.amount
    ]
    if sufficient:
        return min(sufficient, key=lambda c: (c.approval_limit.amount if c.approval_limit else Decimal(0), c.id))
    admins = [c for c in others if c.role == Role.ADMIN]
    if admins:
        return min(admins, key=lambda c: (0 if site_ok(c) and c.site is not None else 1, c.id))
    raise NoApproverError("no approver or admin other than the requester can approve this request")


def may_decide(*, user_id: int, role: Role, requester_id: int, approver_id: int | None) -> str | None:
    """Whether a user may approve or reject a request; ``None`` if allowed, else the reason.

    The assigned approver may decide; an admin may decide any request; nobody may decide their own.
    """
    if user_id == requester_id:
        return "own_request"
    if user_id == approver_id or role == Role.ADMIN:
        return None
    return "not_assigned"
