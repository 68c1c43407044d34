"""The web app's routes: every ``/api`` route needs the admin bearer token; health checks and webhooks do not.

Built with :func:`server.app.create_app` and served in process without its lifespan (no database): the token
is checked before any route touches the services, so refusals need none.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.config import Settings
from server.app import create_app

TOKEN = "route-test-token-0123456789abcdef"


def _app():
    settings = Settings(_env_file=None, ENVIRONMENT="test", ADMIN_API_TOKEN=TOKEN)
    return create_app(settings, "postgresql://unused/db", "redis://unused:1")


def test_every_api_route_needs_the_token_and_only_those() -> None:
    # The bearer scheme is declared by the token dependency: the schema names exactly the routes that check it.
    paths = _app().openapi()["paths"]
    secured = {p for p, ops in paths.items() if any("security" in op for op in ops.values())}
    api = {p for p in paths if p.startswith("/api/")}
    assert {
        "/api/purchase-requests",
        "/api/purchase-requests/{request_id}",
        "/api/tickets",
        "/api/tickets/{ticket_id}",
    } <= api
    assert secured == api
    assert {"/healthz", "/readyz", "/webhooks/meta"} <= set(paths) - secured


def test_api_refuses_missing_or_wrong_tokens_and_health_answers() -> None:
    client = TestClient(_app())
    for path in ("/api/purchase-requests", "/api/purchase-requests/PR-1", "/api/tickets", "/api/tickets/T-1"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = client.get(path, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_openapi_lists_one_tag_per_resource() -> None:
    paths = _app().openapi()["paths"]
    assert paths["/api/purchase-requests"]["get"]["tags"] == ["purchase requests"]
    assert paths["/api/tickets"]["get"]["tags"] == ["tickets"]
    assert paths["/healthz"]["get"]["tags"] == ["health"]
