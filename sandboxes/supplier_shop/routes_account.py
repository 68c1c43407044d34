"""Reference supplier shop, routes: sign-in, sign-out and the home redirect."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from sandboxes.supplier_shop.web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Pages, render, safe_next

logger = logging.getLogger("sandboxes.supplier_shop")


def router(pages: Pages) -> APIRouter:
    """The routes of sign-in, sign-out and the home redirect, with ``pages``' helpers and state."""
    router = APIRouter()
    state = pages.state

    @router.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/search", status_code=303)

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @router.get("/login")
    async def login_form(request: Request, next: str = "/search", reason: str | None = None) -> Response:
        _, sess = pages.current(request)
        if sess is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        token = state.issue_login_token()
        response = render(
            "login.html",
            page="login",
            csrf_token=token,
            next=safe_next(next),
            reason=reason,
            error=None,
            error_code=None,
            email="",
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", max_age=1800)
        return response

    @router.post("/login")
    async def login_submit(
        request: Request,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/search",
    ) -> Response:
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        csrf_ok = bool(csrf_token) and hmac.compare_digest(cookie_token, csrf_token)
        csrf_ok = state.consume_login_token(csrf_token) and csrf_ok
        email = email.strip().lower()
        if not csrf_ok:
            error, code, status = "Your sign-in form expired. Please try again.", "csrf", 403
        elif not state.check_password(email, password):
            # Never echo or log the password; the email is fine to show back.
            logger.info("sandbox shop: failed sign-in for %s", email)
            error, code, status = "Invalid email or password.", "credentials", 401
        else:
            token = state.create_session(email)
            response: Response = RedirectResponse(safe_next(next), status_code=303)
            response.set_cookie(
                SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=int(state.session_ttl_seconds)
            )
            response.delete_cookie(LOGIN_CSRF_COOKIE)
            return response
        new_token = state.issue_login_token()
        response = render(
            "login.html",
            page="login",
            status=status,
            csrf_token=new_token,
            next=safe_next(next),
            reason=None,
            error=error,
            error_code=code,
            email=email,
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, new_token, httponly=True, samesite="lax", max_age=1800)
        return response

    @router.get("/logout")
    async def logout(request: Request) -> Response:
        token, _ = pages.current(request)
        state.end_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router
