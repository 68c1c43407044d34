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


def bare_asgi() -> object:
    """Extra reference (not the issue's baseline): a plain ASGI app that reads the body and returns 200.

    The webhook POST is answered by a plain ASGI layer (``server.routes.webhooks``), so this is its floor.
    """

    async def app(scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":  # type: ignore[operator]
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)  # type: ignore[operator]
        body = b'{"status":"ok"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    return app


def webhook() -> FastAPI:
    """The real app (verify, durable insert, schedule the turn) against DATABASE_URL / REDIS_URL."""
    from core.config import Settings
    from server.app import create_app

    s = Settings()
    return create_app(s, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
