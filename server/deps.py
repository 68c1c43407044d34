"""FastAPI dependencies as ``Annotated`` aliases: the process services, the engine, the admin bearer token.

Route handlers take ``services: ServicesDep`` or ``engine: EngineDep`` and stay one-liners; a router that needs
the admin token declares ``dependencies=[AdminTokenDep]`` (see :mod:`server.routes.api`). The services and the
settings are put on ``app.state`` by :func:`server.app.create_app` (the services in its lifespan).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import Settings
from server.services import Services

bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    """The process's :class:`~server.services.Services` (built by the app's lifespan)."""
    return request.app.state.services


def get_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app``'s, which tests may set apart from the environment)."""
    return request.app.state.settings


def get_engine(services: Annotated[Services, Depends(get_services)]) -> AsyncEngine:
    """The process's SQLAlchemy async engine."""
    return services.engine


def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse a request without ``Authorization: Bearer ADMIN_API_TOKEN`` (compared in constant time).

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` when the token is missing or wrong.
    """
    expected = settings.ADMIN_API_TOKEN.get_secret_value().encode()
    given = (creds.credentials if creds else "").encode()
    if not creds or creds.scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
#: For ``dependencies=[...]`` of a router or route: the admin bearer token is required.
AdminTokenDep = Depends(require_admin)
