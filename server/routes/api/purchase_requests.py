"""``/api/purchase-requests``: purchase requests, newest first, and one request with history, fulfilments, usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from server.deps import EngineDep
from server.routes.api.ids import path_id
from tools import requests as R
from tools.fulfilment_view import fulfilments_of

router = APIRouter(prefix="/purchase-requests", tags=["purchase requests"])


def request_id_of(value: str) -> int | None:
    """``12`` or ``PR-12`` -> 12; anything else -> ``None``.

    Raises:
        HTTPException: 422 for non-ASCII digits or an id beyond the column's range (:func:`path_id`).
    """
    return path_id(value, R.parse_number, "request")


@router.get("")
async def list_purchase_requests(
    engine: EngineDep,
    status: Annotated[str | None, Query(description="filter by status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Purchase requests, newest first, with status, lines, site, needed_by, total, requester and approver."""
    reqs = await R.list_requests(engine, status=status, limit=limit, offset=offset)
    return {"items": [r.to_api() for r in reqs], "limit": limit, "offset": offset}


@router.get("/{request_id}")
async def get_purchase_request(engine: EngineDep, request_id: str) -> dict[str, Any]:
    """One purchase request (id ``12`` or number ``PR-12``) with its history, fulfilments and LLM usage.

    404 when there is none; 422 for an id that cannot exist (non-ASCII digits, beyond the integer range).
    """
    rid = request_id_of(request_id)
    req = await R.get_request(engine, rid) if rid is not None else None
    if rid is None or req is None:
        raise HTTPException(404, "not found")
    out = req.to_api()
    out["history"] = await R.history(engine, rid)
    out["fulfilments"] = await fulfilments_of(engine, rid)
    out["llm_usage"] = await R.usage_of(engine, rid)
    return out
