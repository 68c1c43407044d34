"""The authenticated API (``Authorization: Bearer ADMIN_API_TOKEN``) under ``/api``: one router per resource.

:mod:`~server.routes.api.purchase_requests` (requests with lines, history, fulfilments and LLM usage) and
:mod:`~server.routes.api.tickets` (support tickets). A new resource is one module with its ``router``, included
here; the token check covers every route of :data:`router`.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import AdminTokenDep
from server.routes.api import purchase_requests, tickets

router = APIRouter(prefix="/api", dependencies=[AdminTokenDep])
router.include_router(purchase_requests.router)
router.include_router(tickets.router)
