"""Read-only view of where a request's lines were ordered (``orders PR-12``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import fulfilments


async def fulfilments_of(engine: AsyncEngine, request_id: int) -> list[dict[str, Any]]:
    """Fulfilments of a request, by supplier: state, channel, external order id, attempts, error, evidence."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(fulfilments).where(fulfilments.c.request_id == request_id).order_by(fulfilments.c.supplier)
            )
        ).all()
    return [
        {
            "id": r.id,
            "supplier": r.supplier,
            "channel": r.channel,
            "state": r.state,
            "reference": r.idempotency_key,
            "external_order_id": r.external_order_id,
            "attempts": r.attempts,
            "error": r.error,
            "evidence_keys": list(r.evidence_keys or []),
            "placed_at": r.placed_at.isoformat() if r.placed_at else None,
        }
        for r in rows
    ]


async def orders_text(engine: AsyncEngine, req: Any) -> str:
    """WhatsApp text: each supplier's order for the request, its state and order number, and which lines."""
    rows = await fulfilments_of(engine, req.id)
    head = f"*Orders for {req.number}* ({req.status.replace('_', ' ')})"
    if not rows:
        return head + "\nNo orders have been placed yet."
    out = [head]
    for f in rows:
        lines = [ln for i, ln in enumerate(req.lines) if req.suppliers.get(i) == f["supplier"]]
        what = ", ".join(f"{ln.quantity.normalize():f} {ln.unit} {ln.sku}" for ln in lines)
        where = "ERP" if f["channel"] == "erp" else "website"
        state = f["state"] + (f" — order *{f['external_order_id']}*" if f["external_order_id"] else "")
        if f["state"] == "failed" and f["error"]:
            state += f" — {f['error'][:120]}"
        out.append(f"• {f['supplier']} ({where}): {state}\n  {what}")
    return "\n".join(out)
