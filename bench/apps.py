"""App factories for the ingest benchmark: the real webhook app, and a bare FastAPI endpoint as the baseline."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def bare() -> FastAPI:
    """Baseline: a FastAPI endpoint that reads the body and returns 200, nothing else."""
    app = FastAPI()

    @app.post("/webhooks/meta")
    async def ok(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "ok"})

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def webhook() -> FastAPI:
    """The real app (verify, durable insert, schedule the turn) against DATABASE_URL / REDIS_URL."""
    from core.config import Settings
    from server.app import create_app

    s = Settings()
    return create_app(s, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
