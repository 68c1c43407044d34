"""Submitting and amending are idempotent per inbound message (a crashed turn is re-run whole, see server.worker.turns)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.db import audit_log, purchase_requests
from core.domain import Line
from core.repo import load_catalog
from tools import requests as R


async def lines_for(engine: Any, items: list[tuple[str, str]]) -> list[Line]:
    catalog = {c.sku: c for c in await load_catalog(engine)}
    return [Line(catalog[s].name, Decimal(q), catalog[s].unit, s, catalog[s].unit_price) for s, q in items]


async def test_the_same_message_submits_and_amends_once(engine: Any, seeded: dict[str, Any]) -> None:
    amina = seeded["amina"]
    by = date.today() + timedelta(days=3)
    lines = await lines_for(engine, [("PAP-A4-80", "2")])
    kw: dict[str, Any] = {"site": "Nairobi", "needed_by": by, "currency": "USD", "chat_id": amina.wa_id}
    first = await R.submit_request(engine, requester=amina, lines=lines, provider="meta", inbox_id=501, **kw)
    again = await R.submit_request(engine, requester=amina, lines=lines, provider="meta", inbox_id=501, **kw)
    assert again == first
    other = await R.submit_request(engine, requester=amina, lines=lines, provider="meta", inbox_id=502, **kw)
    assert other.request_id != first.request_id  # another message is another request
    anonymous = await R.submit_request(engine, requester=amina, lines=lines, provider="meta", **kw)
    assert anonymous.request_id not in (first.request_id, other.request_id)  # no message id: no de-duplication

    more = await lines_for(engine, [("PAP-A4-80", "3")])
    change = {"lines": [ln.to_dict() for ln in more]}
    amend = {"actor": amina, "lines": more, "site": "Nairobi", "needed_by": by, "change": change}
    a1 = await R.amend_request(engine, first.request_id, inbox_id=601, **amend)
    a2 = await R.amend_request(engine, first.request_id, inbox_id=601, **amend)
    assert a1 == a2 and a1.revision == 2
    a3 = await R.amend_request(engine, first.request_id, inbox_id=602, **amend)
    assert a3.revision == 3
    async with engine.connect() as conn:
        revision = (
            await conn.execute(select(purchase_requests.c.revision).where(purchase_requests.c.id == first.request_id))
        ).scalar_one()
        amended = (
            await conn.execute(
                select(func.count()).select_from(audit_log).where(audit_log.c.action == "request.amended")
            )
        ).scalar_one()
    assert revision == 3 and amended == 2
