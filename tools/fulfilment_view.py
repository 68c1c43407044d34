"""Read-only view of where a request's lines were ordered (``orders PR-12``, ``GET /api/purchase-requests/...``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import fulfilments
from tools.fulfilment.replies import say


async def fulfilments_of(engine: AsyncEngine, request_id: int) -> list[dict[str, Any]]:
    """Fulfilments of a request, by supplier code.

    Returns:
        One dict per fulfilment: ``id``, ``supplier``, ``channel`` (``erp``/``website``), ``state`` (``pending``,
        ``placing``, ``placed``, ``failed``, ``cancelled``), ``reference`` (our PO reference), ``external_order_id``
        and ``external_state`` (the destination's), ``attempts``, ``round_attempts``, ``retries``, ``error``,
        ``evidence_keys`` (object-storage keys of failed runs), ``lines`` (positions, SKUs, quantities as strings),
        ``created_at``, ``attempted_at``, ``placed_at``, ``failed_at`` (ISO 8601 or ``None``).
    """
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(fulfilments).where(fulfilments.c.request_id == request_id).order_by(fulfilments.c.supplier)
            )
        ).all()

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return [
        {
            "id": r.id,
            "supplier": r.supplier,
            "channel": r.channel,
            "state": r.state,
            "reference": r.idempotency_key,
            "external_order_id": r.external_order_id,
            "external_state": r.external_state,
            "attempts": r.attempts,
            "round_attempts": r.round_attempts,
            "retries": r.retries,
            "error": r.error,
            "evidence_keys": list(r.evidence_keys or []),
            "lines": list(r.lines or []),
            "created_at": iso(r.created_at),
            "attempted_at": iso(r.attempted_at),
            "placed_at": iso(r.placed_at),
            "failed_at": iso(r.failed_at),
        }
        for r in rows
    ]


def _state_text(f: dict[str, Any]) -> str:
    state = f["state"]
    if state == "placed":
        if f.get("external_state") and f["external_state"] != "placed":
            return say("orders_state_placed_at", order=f["external_order_id"], external_state=f["external_state"])
        return say("orders_state_placed", order=f["external_order_id"])
    if state == "pending" and f.get("error"):
        return say("orders_state_retrying", attempt=f["round_attempts"], error=f["error"][:120])
    if state == "placing":
        return say("orders_state_placing", attempt=f["round_attempts"])
    if state == "failed":
        error = (f["error"] or say("fulfil_unknown_reason"))[:120]
        return say("orders_state_failed", attempt=f["round_attempts"], error=error)
    if state == "cancelled":
        return say("orders_state_cancelled", order=f["external_order_id"])
    return state


async def orders_text(engine: AsyncEngine, req: Any) -> str:
    """WhatsApp text: each supplier's order for the request, where it went, its state and order number, its lines.

    The wording is the ``orders_*`` templates of ``prompts/replies.toml``.

    Args:
        engine: SQLAlchemy engine.
        req: a :class:`tools.requests.RequestView`.
    """
    rows = await fulfilments_of(engine, req.id)
    head = say("orders_header", number=req.number, status=req.status.replace("_", " "))
    if not rows:
        return head + "\n" + say("orders_none")
    out = [head]
    for f in rows:
        if f["lines"]:
            what = ", ".join(f"{ln['quantity']} {ln['unit']} {ln.get('sku') or ln['description']}" for ln in f["lines"])
        else:
            lines = [ln for i, ln in enumerate(req.lines) if req.suppliers.get(i) == f["supplier"]]
            what = ", ".join(f"{ln.quantity.normalize():f} {ln.unit} {ln.sku}" for ln in lines)
        where = say("orders_where_erp" if f["channel"] == "erp" else "orders_where_website")
        state = _state_text(f)
        out.append(
            say("orders_row", supplier=f["supplier"], where=where, reference=f["reference"], state=state, lines=what)
        )
    if any(f["state"] == "failed" for f in rows):
        out.append(say("orders_retry_hint"))
    return "\n".join(out)
