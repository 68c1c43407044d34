"""Authenticated API (``Authorization: Bearer ADMIN_API_TOKEN``): purchase requests with lines and history, tickets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, select

from core.db import llm_usage
from tools import requests as R
from tools import tickets as TK
from tools.fulfilment_view import fulfilments_of


async def usage_of(engine: Any, request_id: int) -> dict[str, Any]:
    """LLM token totals for a request: overall and per turn."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    llm_usage.c.turn_id,
                    func.count().label("calls"),
                    func.sum(llm_usage.c.input_tokens).label("input_tokens"),
                    func.sum(llm_usage.c.output_tokens).label("output_tokens"),
                )
                .where(llm_usage.c.request_id == request_id)
                .group_by(llm_usage.c.turn_id)
                .order_by(llm_usage.c.turn_id)
            )
        ).all()
    per_turn = [
        {
            "turn_id": r.turn_id,
            "calls": r.calls,
            "input_tokens": int(r.input_tokens or 0),
            "output_tokens": int(r.output_tokens or 0),
        }
        for r in rows
    ]
    return {
        "calls": sum(p["calls"] for p in per_turn),
        "input_tokens": sum(p["input_tokens"] for p in per_turn),
        "output_tokens": sum(p["output_tokens"] for p in per_turn),
        "per_turn": per_turn,
    }


def _request_id(value: str) -> int | None:
    """``12`` or ``PR-12`` -> 12; anything else -> ``None``."""
    return int(value) if value.isdigit() else R.parse_number(value)


def make_router(svc: Callable[[Request], Any]) -> APIRouter:
    """The ``/api`` router; ``svc`` returns the process services for a request."""
    router = APIRouter(prefix="/api", tags=["purchase requests"])

    @router.get("/purchase-requests")
    async def list_purchase_requests(
        request: Request,
        status: Annotated[str | None, Query(description="filter by status")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Purchase requests, newest first, with status, lines, site, needed_by, total, requester and approver."""
        reqs = await R.list_requests(svc(request).engine, status=status, limit=limit, offset=offset)
        return {"items": [r.to_api() for r in reqs], "limit": limit, "offset": offset}

    @router.get("/purchase-requests/{request_id}")
    async def get_purchase_request(request: Request, request_id: str) -> dict[str, Any]:
        """One purchase request (id ``12`` or number ``PR-12``) with its history, fulfilments and LLM usage."""
        rid = _request_id(request_id)
        if rid is None:
            raise HTTPException(404, "not found")
        engine = svc(request).engine
        req = await R.get_request(engine, rid)
        if req is None:
            raise HTTPException(404, "not found")
        out = req.to_api()
        out["history"] = await R.history(engine, rid)
        out["fulfilments"] = await fulfilments_of(engine, rid)
        out["llm_usage"] = await usage_of(engine, rid)
        return out

    @router.get("/tickets", tags=["tickets"])
    async def list_support_tickets(
        request: Request,
        status: Annotated[str | None, Query(description="filter by status (open)")] = None,
        linked_request: Annotated[
            str | None, Query(alias="request", description="filter by linked request: 12 or PR-12")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Support tickets, newest first: number, status, kind, the person's words, linked request, assignee."""
        rid = None
        if linked_request is not None:
            rid = _request_id(linked_request)
            if rid is None:
                raise HTTPException(422, "request must be 12 or PR-12")
        items = await TK.list_tickets(svc(request).engine, status=status, request_id=rid, limit=limit, offset=offset)
        return {"items": [tk.to_api() for tk in items], "limit": limit, "offset": offset}

    @router.get("/tickets/{ticket_id}", tags=["tickets"])
    async def get_support_ticket(request: Request, ticket_id: str) -> dict[str, Any]:
        """One ticket (id ``3`` or number ``T-3``)."""
        tid = int(ticket_id) if ticket_id.isdigit() else TK.parse_ticket_number(ticket_id)
        ticket = await TK.get_ticket(svc(request).engine, tid) if tid is not None else None
        if ticket is None:
            raise HTTPException(404, "not found")
        return ticket.to_api()

    return router
