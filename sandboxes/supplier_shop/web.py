"""Reference supplier shop, web layer: templates, the switches middleware and the page helpers routes share."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandboxes.supplier_shop.model import Session
from sandboxes.supplier_shop.state import ShopState

SESSION_COOKIE = "tw_session"
LOGIN_CSRF_COOKIE = "tw_login_csrf"
CLEARANCE_COOKIE = "tw_clearance"
#: Paths that no switch touches: the test API, and the icon browsers ask for.
_EXEMPT_PREFIXES = ("/_admin", "/favicon.ico")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


class SwitchesMiddleware:
    """Applies the slow, rate-limit and interstitial switches before the app sees a request."""

    def __init__(self, app: ASGIApp, state: ShopState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: apply the switches, then pass the request on."""
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        sw = self.state.switches()
        if sw.slow_ms:
            await asyncio.sleep(sw.slow_ms / 1000)
        retry_after = self.state.take_rate_limit()
        if retry_after is not None:
            response: Response = render(
                "message.html",
                page="rate-limited",
                status=429,
                heading="Too many requests",
                text=f"You are sending requests too quickly. Please try again in {retry_after} seconds.",
                retry_after=retry_after,
            )
            response.headers["Retry-After"] = str(retry_after)
            await response(scope, receive, send)
            return
        if sw.interstitial and Request(scope).cookies.get(CLEARANCE_COOKIE) != self.state.clearance_token:
            if scope["method"] in ("GET", "HEAD"):
                html = _TEMPLATES.get_template("interstitial.html").render(
                    token_reversed=self.state.clearance_token[::-1],
                    cookie_name=CLEARANCE_COOKIE,
                    max_age=3600,
                    delay_ms=sw.interstitial_delay_ms,
                )
                # Bot-protection services answer their challenge with 503 and forbid caching it.
                response = HTMLResponse(html, status_code=503, headers={"Cache-Control": "no-store"})
            else:
                response = render(
                    "message.html",
                    page="forbidden",
                    status=403,
                    heading="Access denied",
                    text="Your browser did not pass the security check.",
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class DroppedResponse(Response):
    """Headers and the start of a body, then nothing: the server closes the connection mid-response.

    uvicorn closes the connection when an app returns without finishing its response; the browser sees a
    truncated page (``net::ERR_CONTENT_LENGTH_MISMATCH`` or similar), like a proxy timing out after the shop
    committed the order.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: send the start of the page and return without finishing it."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"8192")],
            }
        )
        await send({"type": "http.response.body", "body": b"<!doctype html><html><head>", "more_body": True})


def render(template: str, *, page: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<template>`` for ``<body data-page=page>``; never cached."""
    context.setdefault("account", None)
    context.setdefault("cart_count", 0)
    context.setdefault("retry_after", None)
    html = _TEMPLATES.get_template(template).render(page=page, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/search"
    return target


class Pages:
    """What every route needs: the signed-in session, redirects to sign-in, rendered pages and messages.

    Args:
        state: the shop's state.
    """

    def __init__(self, state: ShopState) -> None:
        self.state = state

    def current(self, request: Request) -> tuple[str | None, Session | None]:
        """The request's session cookie and its live session (``None`` when absent or expired)."""
        token = request.cookies.get(SESSION_COOKIE)
        return token, self.state.session(token)

    def to_login(self, request: Request, reason: str | None = None) -> RedirectResponse:
        """Redirect to the sign-in page, coming back to this URL afterwards (``reason``: ``expired``...)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"/login?next={quote(target, safe='')}" + (f"&reason={reason}" if reason else "")
        return RedirectResponse(url, status_code=303)

    def page(self, template: str, sess: Session, *, page: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page for a signed-in account (its name, cart count and CSRF token in the layout)."""
        cart = self.state.cart(sess.email)
        return render(
            template,
            page=page,
            status=status,
            account=sess.email,
            cart_count=sum(cart.values()),
            csrf_token=sess.csrf_token,
            **context,
        )

    def message(self, sess: Session | None, *, page: str, status: int, heading: str, text: str) -> HTMLResponse:
        """A message page (errors, not found, forbidden), signed in or not."""
        if sess is None:
            return render("message.html", page=page, status=status, heading=heading, text=text)
        return render(
            "message.html",
            page=page,
            status=status,
            heading=heading,
            text=text,
            account=sess.email,
            cart_count=sum(self.state.cart(sess.email).values()),
        )

    def forbidden(self, sess: Session) -> HTMLResponse:
        """403 for a form whose CSRF token does not match the session's."""
        return self.message(
            sess,
            page="forbidden",
            status=403,
            heading="Form expired",
            text="This form has expired. Please go back, reload the page and try again.",
        )

    def cart_view(self, email: str) -> dict[str, Any]:
        """The account's cart for templates: ``lines`` (sku, name, quantity, currency, total), ``total``, ``currency``."""
        lines: list[dict[str, Any]] = []
        total = Decimal("0.00")
        currency = "USD"
        for sku, qty in self.state.cart(email).items():
            product = self.state.products[sku]
            line_total = (product.unit_price * qty).quantize(Decimal("0.01"))
            total += line_total
            currency = product.currency
            lines.append(
                {
                    "sku": sku,
                    "name": product.name,
                    "quantity": qty,
                    "currency": product.currency,
                    "total": line_total,
                }
            )
        return {"lines": lines, "total": total, "currency": currency}
