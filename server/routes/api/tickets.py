"""``/api/tickets``: support tickets, newest first, filtered by status or linked request, and one ticket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from server.deps import EngineDep
from server.routes.api.ids import path_id
from server.routes.api.purchase_requests import request_id_of
from tools import tickets as TK

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.get("")
async def list_support_tickets(
    engine: EngineDep,
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
        rid = request_id_of(linked_request)
        if rid is None:
            raise HTTPException(422, "request must be 12 or PR-12")
    items = await TK.list_tickets(engine, status=status, request_id=rid, limit=limit, offset=offset)
    return {"items": [tk.to_api() for tk in items], "limit": limit, "offset": offset}


@router.get("/{ticket_id}")
async def get_support_ticket(engine: EngineDep, ticket_id: str) -> dict[str, Any]:
    """One ticket (id ``3`` or number ``T-3``); 404 when there is none, 422 for an id that cannot exist."""
    tid = path_id(ticket_id, TK.parse_ticket_number, "ticket")
    ticket = await TK.get_ticket(engine, tid) if tid is not None else None
    if ticket is None:
        raise HTTPException(404, "not found")
    return ticket.to_api()
