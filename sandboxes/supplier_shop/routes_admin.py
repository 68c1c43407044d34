"""Reference supplier shop, routes: the JSON admin API for tests (exempt from every switch)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandboxes.supplier_shop.state import ShopState


def router(state: ShopState) -> APIRouter:
    """The routes of the JSON admin API for tests (exempt from every switch), on ``state``."""
    router = APIRouter()

    @router.get("/_admin/health")
    async def admin_health() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/_admin/orders")
    async def admin_orders(po: str | None = None) -> list[dict[str, Any]]:
        return [o.to_dict() for o in state.orders(po_query=po, exact=True)]

    @router.get("/_admin/switches")
    async def admin_switches() -> dict[str, Any]:
        return state.switches().to_dict()

    @router.post("/_admin/switches")
    async def admin_set_switches(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            return JSONResponse(state.apply_switches(body).to_dict())
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @router.post("/_admin/reset")
    async def admin_reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True, "switches": state.switches().to_dict()}

    return router
