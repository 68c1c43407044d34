"""Reference supplier website: a small B2B web shop that supplier-portal automation is tested against.

It stands in for a third-party site (the ``TONERWEB`` supplier of the demo catalogue), so it behaves like one:
server-rendered HTML forms, a login form with a CSRF token, a session cookie that expires, a cart kept on the
server per account, a checkout that asks for the customer's PO reference, an order history searchable by that
reference, and switches that make it misbehave the way real shops do (slowness, HTTP 429, a session that
expires mid-checkout, a JavaScript bot check, a checkout that records the order and then fails).

State lives in memory, per app instance, behind one lock (the app may be served by several threads).

Pages carry ``<body data-page="...">`` (``login``, ``search``, ``product``, ``cart``, ``checkout``, ``order``,
``orders``, ``interstitial``, ``rate-limited``, ``error``, ``not-found``, ``forbidden``) so automation can
tell where it landed without parsing prose.

A JSON admin API for tests, exempt from every switch, lives under ``/_admin``:

* ``GET /_admin/orders[?po=...]``: all orders (number, account, po_reference, lines, total).
* ``GET /_admin/switches`` / ``POST /_admin/switches``: read / change switches (see :meth:`Switches.apply`).
* ``POST /_admin/reset``: forget orders, carts, sessions and restore the switches the app was created with.
* ``GET /_admin/health``: readiness probe.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import itertools
import logging
import random
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.domain import CatalogItem

logger = logging.getLogger(__name__)

#: Supplier code of the website supplier in the demo catalogue.
DEFAULT_SUPPLIER = "TONERWEB"
#: Accounts of a fresh shop: email -> password.
DEFAULT_ACCOUNTS: Mapping[str, str] = {"buyer@acme.test": "s3cret"}
#: Demo catalogue shipped with the repository (absent from an installed wheel).
DEFAULT_CATALOG_CSV = Path(__file__).resolve().parents[2] / "examples" / "catalog.csv"

SESSION_COOKIE = "tw_session"
LOGIN_CSRF_COOKIE = "tw_login_csrf"
CLEARANCE_COOKIE = "tw_clearance"
MAX_QUANTITY = 999
MAX_PO_LENGTH = 64
#: Seconds a sign-in form (its CSRF token) stays valid.
LOGIN_FORM_TTL_SECONDS = 1800.0
#: Paths that no switch touches: the test API, and the icon browsers ask for.
_EXEMPT_PREFIXES = ("/_admin", "/favicon.ico")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class ShopProduct:
    """One product the shop sells.

    Attributes:
        sku: the shop's article number (the catalogue SKU).
        name: display name.
        unit: unit of sale (``piece``, ``box``...).
        unit_price: price of one unit, in ``currency``.
        currency: ISO 4217 code.
    """

    sku: str
    name: str
    unit: str
    unit_price: Decimal
    currency: str = "USD"

    @classmethod
    def from_catalog_item(cls, item: CatalogItem) -> ShopProduct:
        """Build from a catalogue row of :mod:`core.domain`."""
        return cls(item.sku, item.name, item.unit, item.unit_price.amount, item.unit_price.currency)


def load_products(csv_path: str | Path, supplier: str = DEFAULT_SUPPLIER) -> list[ShopProduct]:
    """Read the products of one supplier from a catalogue CSV.

    Args:
        csv_path: file with the header ``sku,name,unit,unit_price,currency,supplier,...``.
        supplier: supplier code whose rows are kept (case-insensitive).

    Returns:
        Products in file order; a SKU repeated in the file is kept once (first row wins).

    Raises:
        OSError: the file cannot be read.
        ValueError: a price is not a decimal number.
    """
    products: dict[str, ShopProduct] = {}
    with Path(csv_path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if (row.get("supplier") or "").strip().upper() != supplier.upper():
                continue
            sku = row["sku"].strip()
            if sku in products:
                continue
            try:
                price = Decimal(row["unit_price"].strip())
            except InvalidOperation as exc:
                raise ValueError(f"bad unit_price for {sku}: {row['unit_price']!r}") from exc
            products[sku] = ShopProduct(
                sku=sku,
                name=row["name"].strip(),
                unit=(row.get("unit") or "piece").strip(),
                unit_price=price,
                currency=(row.get("currency") or "USD").strip().upper(),
            )
    return list(products.values())


@dataclass(slots=True)
class Switches:
    """Misbehaviours a test can turn on. All off by default.

    Attributes:
        slow_ms: delay added to every response, in milliseconds.
        rate_limit_next: the next N requests are answered 429.
        rate_limit_probability: each request is answered 429 with this probability (0..1).
        rate_limit_retry_after: seconds sent in the 429's ``Retry-After`` header.
        session_expiry: the next N checkout submissions find their session expired and redirect to the login
            page (the cart is kept, as it belongs to the account).
        interstitial: GET pages answer a "checking your browser" page until the browser runs its script.
        interstitial_delay_ms: how long that script waits before setting its cookie and reloading.
        fail_after_record: the next N checkouts record the order and then fail.
        fail_after_record_mode: ``"500"`` answers an error page; ``"drop"`` cuts the connection mid-response.
        unique_po: refuse a checkout whose PO reference the account already used (some B2B shops do).
    """

    slow_ms: int = 0
    rate_limit_next: int = 0
    rate_limit_probability: float = 0.0
    rate_limit_retry_after: int = 1
    session_expiry: int = 0
    interstitial: bool = False
    interstitial_delay_ms: int = 500
    fail_after_record: int = 0
    fail_after_record_mode: Literal["500", "drop"] = "500"
    unique_po: bool = False

    def apply(self, changes: Mapping[str, Any]) -> None:
        """Change switches from a JSON-like mapping; unnamed switches keep their value.

        Accepted forms (``false``/``0``/``null`` turn a switch off)::

            {"slow": true | <ms>}                     # true means 1500 ms
            {"rate_limit": <n> | {"next": n, "probability": p, "retry_after": s}}
            {"session_expiry": true | <n>}            # true means once
            {"interstitial": true | {"delay_ms": ms}}
            {"fail_after_record": true | "500" | "drop" | {"mode": "500"|"drop", "count": n}}
            {"unique_po": true}

        Raises:
            ValueError: unknown switch or a value of the wrong shape.
        """
        for name, value in changes.items():
            if name == "slow":
                self.slow_ms = 1500 if value is True else _count(value, name)
            elif name == "rate_limit":
                if isinstance(value, Mapping):
                    self.rate_limit_next = _count(value.get("next", 0), "rate_limit.next")
                    self.rate_limit_probability = float(value.get("probability", 0.0))
                    if not 0.0 <= self.rate_limit_probability <= 1.0:
                        raise ValueError("rate_limit.probability must be within 0..1")
                    retry_after = value.get("retry_after", 1)
                    self.rate_limit_retry_after = _count(retry_after, "rate_limit.retry_after")
                else:
                    self.rate_limit_next = 1 if value is True else _count(value, name)
                    self.rate_limit_probability = 0.0
            elif name == "session_expiry":
                self.session_expiry = 1 if value is True else _count(value, name)
            elif name == "interstitial":
                if isinstance(value, Mapping):
                    self.interstitial = True
                    self.interstitial_delay_ms = _count(value.get("delay_ms", 500), "interstitial.delay_ms")
                else:
                    self.interstitial = bool(value)
            elif name == "fail_after_record":
                mode: Any = "500"
                count: Any = 1
                if isinstance(value, Mapping):
                    mode, count = value.get("mode", "500"), value.get("count", 1)
                elif isinstance(value, str):
                    mode = value
                elif value is True:
                    pass
                else:
                    count = value
                if mode not in ("500", "drop"):
                    raise ValueError("fail_after_record mode must be '500' or 'drop'")
                self.fail_after_record = _count(count, "fail_after_record.count")
                self.fail_after_record_mode = mode
            elif name == "unique_po":
                self.unique_po = bool(value)
            else:
                raise ValueError(f"unknown switch {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form of every switch."""
        return asdict(self)


def _count(value: Any, name: str) -> int:
    """A non-negative int from JSON (``null``/``false`` -> 0)."""
    if value is None or value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return int(value)


@dataclass(slots=True)
class _Session:
    email: str
    csrf_token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class ShopOrderLine:
    """A line of a recorded order (prices frozen at checkout)."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str

    @property
    def total(self) -> Decimal:
        """Quantity times unit price, rounded to cents."""
        return (self.unit_price * self.quantity).quantize(Decimal("0.01"))


@dataclass(slots=True)
class ShopOrder:
    """An order the shop recorded.

    Attributes:
        number: the shop's order number (``SO-10001``...).
        account: email of the account that placed it.
        po_reference: the customer PO reference typed at checkout.
        lines: what was in the cart.
        created_at: when it was recorded (UTC).
        notes: delivery notes typed at checkout.
        status: always ``received`` in the sandbox.
    """

    number: str
    account: str
    po_reference: str
    lines: list[ShopOrderLine]
    created_at: datetime
    notes: str = ""
    status: str = "received"

    @property
    def currency(self) -> str:
        """Currency of the order (of its first line)."""
        return self.lines[0].currency if self.lines else "USD"

    @property
    def total(self) -> Decimal:
        """Sum of the line totals."""
        return sum((line.total for line in self.lines), Decimal("0.00"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (amounts as strings) for the admin API."""
        return {
            "number": self.number,
            "account": self.account,
            "po_reference": self.po_reference,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "notes": self.notes,
            "currency": self.currency,
            "total": str(self.total),
            "lines": [
                {
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": str(line.unit_price),
                    "currency": line.currency,
                }
                for line in self.lines
            ],
        }


class DuplicatePoReference(Exception):
    """Checkout refused: the account already has an order with this PO reference (``unique_po`` switch)."""

    def __init__(self, existing: ShopOrder) -> None:
        super().__init__(existing.number)
        self.existing = existing


class ShopState:
    """Everything the shop remembers; every method is atomic under one lock.

    Args:
        products: the assortment.
        accounts: email -> password.
        switches: initial switches (also what :meth:`reset` restores).
        session_ttl_seconds: lifetime of a session from sign-in.
        seed: seed of the random generator behind ``rate_limit_probability``.
    """

    def __init__(
        self,
        products: Iterable[ShopProduct],
        accounts: Mapping[str, str],
        switches: Switches,
        session_ttl_seconds: float,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.products: dict[str, ShopProduct] = {p.sku: p for p in products}
        self._accounts = dict(accounts)
        self._initial_switches = replace(switches)
        self._switches = replace(switches)
        self.session_ttl_seconds = session_ttl_seconds
        self._rng = random.Random(seed)
        self._sessions: dict[str, _Session] = {}
        self._login_tokens: dict[str, float] = {}
        self._carts: dict[str, dict[str, int]] = {}
        self._orders: list[ShopOrder] = []
        # Order numbers keep growing across resets, as a real shop's would.
        self._numbers = itertools.count(10001)
        self.clearance_token = secrets.token_urlsafe(16)

    # switches -----------------------------------------------------------------------------------------------
    def switches(self) -> Switches:
        """A copy of the current switches."""
        with self._lock:
            return replace(self._switches)

    def apply_switches(self, changes: Mapping[str, Any]) -> Switches:
        """Apply :meth:`Switches.apply` atomically (all or nothing); returns the new switches."""
        with self._lock:
            updated = replace(self._switches)
            updated.apply(changes)
            self._switches = updated
            return replace(updated)

    def take_rate_limit(self) -> int | None:
        """Decide whether this request is rate limited; returns its Retry-After seconds, else ``None``."""
        with self._lock:
            sw = self._switches
            if sw.rate_limit_next > 0:
                sw.rate_limit_next -= 1
                return sw.rate_limit_retry_after
            if sw.rate_limit_probability and self._rng.random() < sw.rate_limit_probability:
                return sw.rate_limit_retry_after
            return None

    def _take(self, name: Literal["session_expiry", "fail_after_record"]) -> bool:
        with self._lock:
            left = getattr(self._switches, name)
            if left > 0:
                setattr(self._switches, name, left - 1)
                return True
            return False

    def take_session_expiry(self) -> bool:
        """Consume one forced session expiry, if any is armed."""
        return self._take("session_expiry")

    def take_fail_after_record(self) -> bool:
        """Consume one forced failure after recording an order, if any is armed."""
        return self._take("fail_after_record")

    def reset(self) -> None:
        """Forget orders, carts, sessions and sign-in forms; restore the initial switches."""
        with self._lock:
            self._sessions.clear()
            self._login_tokens.clear()
            self._carts.clear()
            self._orders.clear()
            self._switches = replace(self._initial_switches)

    # sign-in and sessions -----------------------------------------------------------------------------
    def issue_login_token(self) -> str:
        """A fresh CSRF token for one sign-in form."""
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            # Drop stale tokens so that a crawler cannot grow the table without bound.
            for old in [t for t, exp in self._login_tokens.items() if exp < now]:
                del self._login_tokens[old]
            self._login_tokens[token] = now + LOGIN_FORM_TTL_SECONDS
        return token

    def consume_login_token(self, token: str) -> bool:
        """True if ``token`` was issued, is unexpired and unused; it cannot be used again."""
        with self._lock:
            expires = self._login_tokens.pop(token, None)
        return expires is not None and expires >= time.monotonic()

    def check_password(self, email: str, password: str) -> bool:
        """Compare credentials in constant time."""
        with self._lock:
            expected = self._accounts.get(email)
        # Compare against a dummy for unknown accounts too, so timing does not reveal which emails exist.
        ok = hmac.compare_digest((expected or "\0invalid").encode(), password.encode())
        return expected is not None and ok

    def create_session(self, email: str) -> str:
        """Sign ``email`` in; returns the session token for the cookie."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = _Session(
                email, secrets.token_urlsafe(24), time.monotonic() + self.session_ttl_seconds
            )
        return token

    def session(self, token: str | None) -> _Session | None:
        """The live session of a cookie value, or ``None`` (unknown or expired; expired ones are dropped)."""
        if not token:
            return None
        with self._lock:
            sess = self._sessions.get(token)
            if sess is not None and sess.expires_at < time.monotonic():
                del self._sessions[token]
                sess = None
            return None if sess is None else replace(sess)

    def end_session(self, token: str | None) -> None:
        """Sign out (no-op for an unknown token)."""
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    # cart and orders ----------------------------------------------------------------------------------------
    def add_to_cart(self, email: str, sku: str, quantity: int) -> None:
        """Add ``quantity`` of ``sku`` to the account's cart (quantities of the same SKU add up, capped)."""
        with self._lock:
            cart = self._carts.setdefault(email, {})
            cart[sku] = min(cart.get(sku, 0) + quantity, MAX_QUANTITY)

    def clear_cart(self, email: str) -> None:
        """Empty the account's cart."""
        with self._lock:
            self._carts.pop(email, None)

    def cart(self, email: str) -> dict[str, int]:
        """A copy of the account's cart: SKU -> quantity, in the order lines were added."""
        with self._lock:
            return dict(self._carts.get(email, {}))

    def place_order(self, email: str, po_reference: str, notes: str, unique_po: bool) -> ShopOrder:
        """Turn the account's cart into an order and empty the cart, atomically.

        Raises:
            ValueError: the cart is empty.
            DuplicatePoReference: ``unique_po`` is set and the account already used this PO reference.
        """
        with self._lock:
            cart = self._carts.get(email) or {}
            if not cart:
                raise ValueError("cart is empty")
            if unique_po:
                for order in self._orders:
                    if order.account == email and order.po_reference.casefold() == po_reference.casefold():
                        raise DuplicatePoReference(order)
            lines = [
                ShopOrderLine(
                    sku,
                    self.products[sku].name,
                    qty,
                    self.products[sku].unit_price,
                    self.products[sku].currency,
                )
                for sku, qty in cart.items()
            ]
            order = ShopOrder(
                number=f"SO-{next(self._numbers)}",
                account=email,
                po_reference=po_reference,
                lines=lines,
                created_at=datetime.now(UTC).replace(microsecond=0),
                notes=notes,
            )
            self._orders.append(order)
            del self._carts[email]
            return order

    def orders(self, email: str | None = None, po_query: str | None = None, exact: bool = False) -> list[ShopOrder]:
        """Recorded orders, oldest first.

        Args:
            email: only this account's orders (``None``: all accounts).
            po_query: only orders whose PO reference contains (or, with ``exact``, equals) this text,
                case-insensitively; like most shops' history search, a substring match.
            exact: match the whole PO reference.
        """
        with self._lock:
            found = list(self._orders)
        if email is not None:
            found = [o for o in found if o.account == email]
        if po_query:
            q = po_query.strip().casefold()
            found = [o for o in found if (o.po_reference.casefold() == q if exact else q in o.po_reference.casefold())]
        return found

    def order(self, email: str, number: str) -> ShopOrder | None:
        """One of the account's orders by number."""
        return next((o for o in self.orders(email) if o.number == number), None)


class _SwitchesMiddleware:
    """Applies the slow, rate-limit and interstitial switches before the app sees a request."""

    def __init__(self, app: ASGIApp, state: ShopState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        sw = self.state.switches()
        if sw.slow_ms:
            await asyncio.sleep(sw.slow_ms / 1000)
        retry_after = self.state.take_rate_limit()
        if retry_after is not None:
            response: Response = _render(
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
                response = _render(
                    "message.html",
                    page="forbidden",
                    status=403,
                    heading="Access denied",
                    text="Your browser did not pass the security check.",
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _DroppedResponse(Response):
    """Headers and the start of a body, then nothing: the server closes the connection mid-response.

    uvicorn closes the connection when an app returns without finishing its response; the browser sees a
    truncated page (``net::ERR_CONTENT_LENGTH_MISMATCH`` or similar), like a proxy timing out after the shop
    committed the order.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"8192")],
            }
        )
        await send({"type": "http.response.body", "body": b"<!doctype html><html><head>", "more_body": True})


def _render(template: str, *, page: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("account", None)
    context.setdefault("cart_count", 0)
    context.setdefault("retry_after", None)
    html = _TEMPLATES.get_template(template).render(page=page, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/search"
    return target


def create_app(
    products: Iterable[ShopProduct | CatalogItem] | None = None,
    accounts: Mapping[str, str] | None = None,
    switches: Switches | Mapping[str, Any] | None = None,
    *,
    session_ttl_seconds: float = 1800.0,
    seed: int | None = None,
) -> FastAPI:
    """Build one shop (its own state) as an ASGI app.

    Args:
        products: the assortment; ``None`` reads the ``TONERWEB`` rows of ``examples/catalog.csv`` when the
            repository is present, else the shop is empty.
        accounts: email -> password; default :data:`DEFAULT_ACCOUNTS`.
        switches: initial switches, as :class:`Switches` or the mapping :meth:`Switches.apply` takes.
        session_ttl_seconds: session lifetime from sign-in (also the cookie's ``Max-Age``).
        seed: seed for the probabilistic rate limit, for reproducible tests.

    Returns:
        The FastAPI app; its state is ``app.state.shop`` (a :class:`ShopState`).

    Raises:
        ValueError: a switch mapping is malformed.
    """
    if products is None:
        products = load_products(DEFAULT_CATALOG_CSV) if DEFAULT_CATALOG_CSV.exists() else []
    shop_products = [p if isinstance(p, ShopProduct) else ShopProduct.from_catalog_item(p) for p in products]
    if isinstance(switches, Switches):
        initial = replace(switches)
    else:
        initial = Switches()
        initial.apply(switches or {})
    state = ShopState(
        shop_products, DEFAULT_ACCOUNTS if accounts is None else accounts, initial, session_ttl_seconds, seed
    )

    app = FastAPI(title="TonerWeb sandbox shop", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.shop = state
    app.add_middleware(_SwitchesMiddleware, state=state)

    def current(request: Request) -> tuple[str | None, _Session | None]:
        token = request.cookies.get(SESSION_COOKIE)
        return token, state.session(token)

    def to_login(request: Request, reason: str | None = None) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"/login?next={quote(target, safe='')}" + (f"&reason={reason}" if reason else "")
        return RedirectResponse(url, status_code=303)

    def page(template: str, sess: _Session, *, page: str, status: int = 200, **context: Any) -> HTMLResponse:
        cart = state.cart(sess.email)
        return _render(
            template,
            page=page,
            status=status,
            account=sess.email,
            cart_count=sum(cart.values()),
            csrf_token=sess.csrf_token,
            **context,
        )

    def message(sess: _Session | None, *, page: str, status: int, heading: str, text: str) -> HTMLResponse:
        if sess is None:
            return _render("message.html", page=page, status=status, heading=heading, text=text)
        return _render(
            "message.html",
            page=page,
            status=status,
            heading=heading,
            text=text,
            account=sess.email,
            cart_count=sum(state.cart(sess.email).values()),
        )

    def forbidden(sess: _Session) -> HTMLResponse:
        return message(
            sess,
            page="forbidden",
            status=403,
            heading="Form expired",
            text="This form has expired. Please go back, reload the page and try again.",
        )

    def cart_view(email: str) -> dict[str, Any]:
        lines: list[dict[str, Any]] = []
        total = Decimal("0.00")
        currency = "USD"
        for sku, qty in state.cart(email).items():
            product = state.products[sku]
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

    # -- pages ----------------------------------------------------------------------------------------
    @app.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/search", status_code=303)

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/login")
    async def login_form(request: Request, next: str = "/search", reason: str | None = None) -> Response:
        _, sess = current(request)
        if sess is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        token = state.issue_login_token()
        response = _render(
            "login.html",
            page="login",
            csrf_token=token,
            next=_safe_next(next),
            reason=reason,
            error=None,
            error_code=None,
            email="",
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", max_age=1800)
        return response

    @app.post("/login")
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
            response: Response = RedirectResponse(_safe_next(next), status_code=303)
            response.set_cookie(
                SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=int(state.session_ttl_seconds)
            )
            response.delete_cookie(LOGIN_CSRF_COOKIE)
            return response
        new_token = state.issue_login_token()
        response = _render(
            "login.html",
            page="login",
            status=status,
            csrf_token=new_token,
            next=_safe_next(next),
            reason=None,
            error=error,
            error_code=code,
            email=email,
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, new_token, httponly=True, samesite="lax", max_age=1800)
        return response

    @app.get("/logout")
    async def logout(request: Request) -> Response:
        token, _ = current(request)
        state.end_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        needle = q.strip().casefold()
        found = [
            p
            for p in state.products.values()
            if not needle or needle in p.sku.casefold() or needle in p.name.casefold()
        ]
        return page("search.html", sess, page="search", query=q, products=found)

    @app.get("/product/{sku}")
    async def product(request: Request, sku: str) -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        item = state.products.get(sku)
        if item is None:
            return message(
                sess,
                page="not-found",
                status=404,
                heading="Product not found",
                text=f"We do not sell an article {sku}.",
            )
        return page("product.html", sess, page="product", product=item, error=None, max_quantity=MAX_QUANTITY)

    @app.post("/cart/add")
    async def cart_add(
        request: Request,
        sku: Annotated[str, Form()] = "",
        quantity: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request, "expired")
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return forbidden(sess)
        item = state.products.get(sku)
        if item is None:
            return message(
                sess,
                page="not-found",
                status=404,
                heading="Product not found",
                text=f"We do not sell an article {sku}.",
            )
        try:
            qty = int(quantity)
        except ValueError:
            qty = 0
        if not 1 <= qty <= MAX_QUANTITY:
            return page(
                "product.html",
                sess,
                page="product",
                status=422,
                product=item,
                error=f"Quantity must be a whole number from 1 to {MAX_QUANTITY}.",
                max_quantity=MAX_QUANTITY,
            )
        state.add_to_cart(sess.email, sku, qty)
        return RedirectResponse("/cart", status_code=303)

    @app.get("/cart")
    async def cart(request: Request) -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        return page("cart.html", sess, page="cart", **cart_view(sess.email))

    @app.post("/cart/clear")
    async def cart_clear(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request, "expired")
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return forbidden(sess)
        state.clear_cart(sess.email)
        return RedirectResponse("/cart", status_code=303)

    @app.get("/checkout")
    async def checkout_form(request: Request) -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        view = cart_view(sess.email)
        if not view["lines"]:
            return RedirectResponse("/cart", status_code=303)
        return page(
            "checkout.html",
            sess,
            page="checkout",
            error=None,
            error_code=None,
            po_reference="",
            max_po_length=MAX_PO_LENGTH,
            **view,
        )

    @app.post("/checkout")
    async def checkout_submit(
        request: Request,
        po_reference: Annotated[str, Form()] = "",
        notes: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        token, sess = current(request)
        if sess is None or state.take_session_expiry():
            # The session ran out while the buyer filled in the form: the POST bounces to the sign-in page and
            # what was typed is lost; the cart survives because it belongs to the account.
            state.end_session(token)
            response: Response = RedirectResponse("/login?next=%2Fcheckout&reason=expired", status_code=303)
            response.delete_cookie(SESSION_COOKIE)
            return response
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return forbidden(sess)
        view = cart_view(sess.email)
        if not view["lines"]:
            return RedirectResponse("/cart", status_code=303)
        po = po_reference.strip()

        def refuse(error: str, code: str, status: int) -> HTMLResponse:
            return page(
                "checkout.html",
                sess,
                page="checkout",
                status=status,
                error=error,
                error_code=code,
                po_reference=po,
                max_po_length=MAX_PO_LENGTH,
                **view,
            )

        if not po:
            return refuse("Please enter your PO reference.", "po_required", 422)
        if len(po) > MAX_PO_LENGTH:
            return refuse(f"The PO reference is longer than {MAX_PO_LENGTH} characters.", "po_too_long", 422)
        try:
            order = state.place_order(sess.email, po, notes.strip(), state.switches().unique_po)
        except DuplicatePoReference as dup:
            return refuse(
                f"You already placed order {dup.existing.number} with PO reference {po}.", "po_duplicate", 409
            )
        except ValueError:
            return RedirectResponse("/cart", status_code=303)
        logger.info("sandbox shop: order %s recorded for PO %s", order.number, order.po_reference)
        if state.take_fail_after_record():
            if state.switches().fail_after_record_mode == "drop":
                return _DroppedResponse()
            return message(
                sess,
                page="error",
                status=500,
                heading="Something went wrong",
                text="We could not complete your request. Please try again later.",
            )
        return RedirectResponse(f"/orders/{order.number}?placed=1", status_code=303)

    @app.get("/orders")
    async def orders(request: Request, po: str = "") -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        found = sorted(state.orders(sess.email, po or None), key=lambda o: o.created_at, reverse=True)
        return page("orders.html", sess, page="orders", po=po, orders=found)

    @app.get("/orders/{number}")
    async def order_detail(request: Request, number: str, placed: int = 0) -> Response:
        _, sess = current(request)
        if sess is None:
            return to_login(request)
        order = state.order(sess.email, number)
        if order is None:
            return message(
                sess,
                page="not-found",
                status=404,
                heading="Order not found",
                text=f"There is no order {number} on your account.",
            )
        return page("order.html", sess, page="order", order=order, placed=bool(placed))

    # -- admin API for tests --------------------------------------------------------------------------
    @app.get("/_admin/health")
    async def admin_health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/_admin/orders")
    async def admin_orders(po: str | None = None) -> list[dict[str, Any]]:
        return [o.to_dict() for o in state.orders(po_query=po, exact=True)]

    @app.get("/_admin/switches")
    async def admin_switches() -> dict[str, Any]:
        return state.switches().to_dict()

    @app.post("/_admin/switches")
    async def admin_set_switches(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            return JSONResponse(state.apply_switches(body).to_dict())
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/_admin/reset")
    async def admin_reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True, "switches": state.switches().to_dict()}

    return app


def run_supplier_sandbox(
    host: str = "127.0.0.1",
    port: int = 8090,
    catalog_csv: str | Path | None = None,
    *,
    supplier: str = DEFAULT_SUPPLIER,
    accounts: Mapping[str, str] | None = None,
    log_level: str = "info",
) -> None:
    """Serve the reference shop until interrupted (``procure sandbox supplier``).

    Args:
        host: interface to bind; keep ``127.0.0.1`` unless the shop must be reachable from elsewhere (its
            admin API has no authentication).
        port: TCP port.
        catalog_csv: catalogue whose ``supplier`` rows become the products; ``None`` uses the demo catalogue.
        supplier: supplier code to take from the catalogue.
        accounts: email -> password; default ``buyer@acme.test`` / ``s3cret``.
        log_level: uvicorn log level.

    Raises:
        OSError: the catalogue cannot be read or the port cannot be bound.
    """
    import uvicorn

    path = Path(catalog_csv) if catalog_csv is not None else DEFAULT_CATALOG_CSV
    products = load_products(path, supplier) if path.exists() or catalog_csv is not None else []
    app = create_app(products, accounts)
    logger.info("sandbox shop: %d products, accounts %s", len(products), sorted(accounts or DEFAULT_ACCOUNTS))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_SUPPLIER",
    "ShopOrder",
    "ShopOrderLine",
    "ShopProduct",
    "ShopState",
    "Switches",
    "create_app",
    "load_products",
    "run_supplier_sandbox",
]
