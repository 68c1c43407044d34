"""The policy rules: who approves a request (choose_approver), who may decide it (may_decide), what a draft lacks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.domain import Line, Money, Role
from core.policy import (
    CONFIDENCE_ASK,
    Approver,
    NoApproverError,
    choose_approver,
    free_text_lines,
    may_decide,
    missing_fields,
    total_of,
)

TODAY = date(2026, 11, 18)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def approver(id: int, limit: str | None, site: str | None = None, role: Role = Role.APPROVER) -> Approver:
    return Approver(id=id, role=role, site=site, approval_limit=usd(limit) if limit is not None else None)


# --- choose_approver --------------------------------------------------------------------------------------------

LOW, HIGH = approver(2, "500", "Nairobi"), approver(3, "5000", "Nairobi")
MOMBASA = approver(4, "100", "Mombasa")
COMPANY_WIDE = approver(5, "1000")
ADMIN_NAIROBI = approver(8, None, "Nairobi", Role.ADMIN)
ADMIN_ANYWHERE = approver(7, None, None, Role.ADMIN)
EVERYONE = [HIGH, LOW, MOMBASA, COMPANY_WIDE, ADMIN_ANYWHERE, ADMIN_NAIROBI]


@pytest.mark.parametrize(
    ("total", "site", "expected"),
    [
        ("120.00", "Nairobi", LOW),  # the lowest limit that covers the total
        ("500.00", "Nairobi", LOW),  # a limit equal to the total covers it
        ("500.01", "Nairobi", COMPANY_WIDE),  # company-wide approvers count for every site
        ("1200", "Nairobi", HIGH),
        ("50", "Mombasa", MOMBASA),  # another site's approvers are not asked
        ("50", None, MOMBASA),  # no site on the request: every approver is eligible, lowest limit wins
        ("9000", "Nairobi", ADMIN_NAIROBI),  # above every limit: an admin, the same site's first
        ("9000", "Kisumu", ADMIN_ANYWHERE),  # no admin of that site: the admin with the lowest id
    ],
)
def test_choose_approver_lowest_sufficient_limit_then_admin(total: str, site: str | None, expected: Approver) -> None:
    assert choose_approver(EVERYONE, requester_id=1, site=site, total=usd(total)) == expected


def test_choose_approver_never_the_requester() -> None:
    assert choose_approver(EVERYONE, requester_id=LOW.id, site="Nairobi", total=usd("100")) == COMPANY_WIDE
    assert choose_approver([LOW, ADMIN_ANYWHERE], requester_id=LOW.id, site="Nairobi", total=usd("1")) == ADMIN_ANYWHERE
    with pytest.raises(NoApproverError):
        choose_approver([LOW], requester_id=LOW.id, site="Nairobi", total=usd("1"))
    with pytest.raises(NoApproverError):
        choose_approver([], requester_id=1, site=None, total=usd("1"))


def test_choose_approver_ignores_limits_in_another_currency_and_missing_limits() -> None:
    kes = Approver(id=2, role=Role.APPROVER, site=None, approval_limit=Money(Decimal("100000"), "KES"))
    no_limit = approver(3, None)
    assert choose_approver([kes, no_limit, ADMIN_ANYWHERE], requester_id=1, site=None, total=usd("10")) == (
        ADMIN_ANYWHERE
    )


def test_choose_approver_ties_go_to_the_lowest_id_and_site_names_ignore_case() -> None:
    a, b = approver(9, "300", "nairobi"), approver(6, "300", "NAIROBI")
    assert choose_approver([a, b], requester_id=1, site="Nairobi", total=usd("10")) == b


# --- may_decide ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "role", "approver_id", "expected"),
    [
        (2, Role.APPROVER, 2, None),  # the assigned approver
        (3, Role.APPROVER, 2, "not_assigned"),  # another approver
        (7, Role.ADMIN, 2, None),  # an admin may decide any request
        (7, Role.ADMIN, None, None),
        (4, Role.BUYER, 2, "not_assigned"),
        (5, Role.REQUESTER, None, "not_assigned"),
        (1, Role.APPROVER, 1, "own_request"),  # nobody decides their own request, assigned or not
        (1, Role.ADMIN, 2, "own_request"),
    ],
)
def test_may_decide(user_id: int, role: Role, approver_id: int | None, expected: str | None) -> None:
    assert may_decide(user_id=user_id, role=role, requester_id=1, approver_id=approver_id) == expected


# --- missing_fields, free_text_lines, total_of --------------------------------------------------------------------

PAPER = Line("A4 paper", Decimal(10), "box", "PAP-A4", usd("4.50"))
FREE = Line("blue widgets", Decimal(2), "piece", None, None, 0.3)
WHICH = Line("toner", Decimal(1), "piece", None, None, 0.4, ["HP-26A", "HP-26X"])
UNCONVERTED = Line("water", Decimal(50), "bottle", "WAT-24", None, 0.45)


def test_missing_fields_in_the_order_to_ask() -> None:
    assert missing_fields([], None, None, today=TODAY) == ["lines", "site", "needed_by"]
    assert missing_fields([PAPER], "Nairobi", TODAY, today=TODAY) == []
    assert missing_fields([WHICH, UNCONVERTED, PAPER], None, None, today=TODAY) == [
        "clarify_item",
        "quantity",
        "site",
        "needed_by",
    ]
    # A date in the past is asked again; free-text lines never block.
    assert missing_fields([PAPER, FREE], "Nairobi", date(2026, 11, 17), today=TODAY) == ["needed_by"]


def test_a_line_at_the_confidence_threshold_is_not_asked() -> None:
    sure = Line("water", Decimal(3), "pack", "WAT-24", None, CONFIDENCE_ASK)
    assert missing_fields([sure], "Nairobi", TODAY, today=TODAY) == []


def test_free_text_lines_and_total() -> None:
    assert free_text_lines([PAPER, FREE, WHICH]) == [FREE]
    other = Line("chairs", Decimal(2), "piece", "CH-1", Money(Decimal("10"), "KES"))
    # Unpriced lines and lines in another currency are left out of the total.
    assert total_of([PAPER, FREE, other, PAPER], "USD") == usd("90.00")
    assert total_of([], "USD") == usd("0")
