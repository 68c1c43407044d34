"""Reference supplier shop, routes: checkout (with its misbehaviours) and the order history."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandboxes.supplier_shop.model import MAX_PO_LENGTH, DuplicatePoReference
from sandboxes.supplier_shop.web import SESSION_COOKIE, DroppedResponse, Pages

logger = logging.getLogger("sandboxes.supplier_shop")


def router(pages: Pages) -> APIRouter:
    """The routes of checkout (with its misbehaviours) and the order history, with ``pages``' helpers and state."""
    router = APIRouter()
    state = pages.state

    @router.get("/checkout")
    async def checkout_form(request: Request) -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        view = pages.cart_view(sess.email)
        if not view["lines"]:
            return RedirectResponse("/cart", status_code=303)
        return pages.page(
            "checkout.html",
            sess,
            page="checkout",
            error=None,
            error_code=None,
            po_reference="",
            max_po_length=MAX_PO_LENGTH,
            **view,
        )

    @router.post("/checkout")
    async def checkout_submit(
        request: Request,
        po_reference: Annotated[str, Form()] = "",
        notes: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        token, sess = pages.current(request)
        if sess is None or state.take_session_expiry():
            # The session ran out while the buyer filled in the form: the POST bounces to the sign-in page and
            # what was typed is lost; the cart survives because it belongs to the account.
            state.end_session(token)
            response: Response = RedirectResponse("/login?next=%2Fcheckout&reason=expired", status_code=303)
            response.delete_cookie(SESSION_COOKIE)
            return response
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return pages.forbidden(sess)
        view = pages.cart_view(sess.email)
        if not view["lines"]:
            return RedirectResponse("/cart", status_code=303)
        po = po_reference.strip()

        def refuse(error: str, code: str, status: int) -> HTMLResponse:
            return pages.page(
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
                return DroppedResponse()
            return pages.message(
                sess,
                page="error",
                status=500,
                heading="Something went wrong",
                text="We could not complete your request. Please try again later.",
            )
        return RedirectResponse(f"/orders/{order.number}?placed=1", status_code=303)

    @router.get("/orders")
    async def orders(request: Request, po: str = "") -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        found = sorted(state.orders(sess.email, po or None), key=lambda o: o.created_at, reverse=True)
        return pages.page("orders.html", sess, page="orders", po=po, orders=found)

    @router.get("/orders/{number}")
    async def order_detail(request: Request, number: str, placed: int = 0) -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        order = state.order(sess.email, number)
        if order is None:
            return pages.message(
                sess,
                page="not-found",
                status=404,
                heading="Order not found",
                text=f"There is no order {number} on your account.",
            )
        return pages.page("order.html", sess, page="order", order=order, placed=bool(placed))

    return router
