"""Health checks, unauthenticated: ``/healthz`` (the process answers) and ``/readyz`` (database and Redis answer).

Under ``procure serve`` ``/readyz`` also reports the supervised workers (:mod:`server.supervisor`): ``workers``
lists each one's ``pid``, ``alive``, ``restarts`` and ``last_exit_code``, and ``worker`` sums them up (``"ok"``
when every worker runs, else ``"restarting"``). A worker being restarted does not make the web process unready:
webhooks are still stored durably and the worker catches up when it is back.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    """Readiness: the database and Redis answer (503 with each check's error otherwise); supervised workers' state."""
    checks = await services.readiness()
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", **checks}
    supervisor = getattr(request.app.state, "supervisor", None)
    if supervisor is not None:
        workers = supervisor.state()
        body["worker"] = "ok" if all(w["alive"] for w in workers) else "restarting"
        body["workers"] = workers
    return JSONResponse(body, status_code=200 if ok else 503)
