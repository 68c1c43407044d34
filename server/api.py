"""Authenticated API (``Authorization: Bearer ADMIN_API_TOKEN``): purchase requests with lines and history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, select

from core.db import llm_usage
from tools import requests as R
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
        rid = R.parse_number(request_id) if not request_id.isdigit() else int(request_id)
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

    return router
