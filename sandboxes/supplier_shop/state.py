"""Reference supplier shop, state: everything the shop remembers, in memory, behind one lock.

The app may be served by several threads; every :class:`ShopState` method is atomic under its lock.
"""

from __future__ import annotations

import hmac
import itertools
import random
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from sandboxes.supplier_shop.model import (
    MAX_QUANTITY,
    DuplicatePoReference,
    Session,
    ShopOrder,
    ShopOrderLine,
    ShopProduct,
    Switches,
)

#: Seconds a sign-in form (its CSRF token) stays valid.
LOGIN_FORM_TTL_SECONDS = 1800.0


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
        self._sessions: dict[str, Session] = {}
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
            self._sessions[token] = Session(
                email, secrets.token_urlsafe(24), time.monotonic() + self.session_ttl_seconds
            )
        return token

    def session(self, token: str | None) -> Session | None:
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
