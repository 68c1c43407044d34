"""Reference supplier shop, routes: search, product pages and the cart."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from sandboxes.supplier_shop.model import MAX_QUANTITY
from sandboxes.supplier_shop.web import Pages


def router(pages: Pages) -> APIRouter:
    """The routes of search, product pages and the cart, with ``pages``' helpers and state."""
    router = APIRouter()
    state = pages.state

    @router.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        needle = q.strip().casefold()
        found = [
            p
            for p in state.products.values()
            if not needle or needle in p.sku.casefold() or needle in p.name.casefold()
        ]
        return pages.page("search.html", sess, page="search", query=q, products=found)

    @router.get("/product/{sku}")
    async def product(request: Request, sku: str) -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        item = state.products.get(sku)
        if item is None:
            return pages.message(
                sess,
                page="not-found",
                status=404,
                heading="Product not found",
                text=f"We do not sell an article {sku}.",
            )
        return pages.page("product.html", sess, page="product", product=item, error=None, max_quantity=MAX_QUANTITY)

    @router.post("/cart/add")
    async def cart_add(
        request: Request,
        sku: Annotated[str, Form()] = "",
        quantity: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request, "expired")
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return pages.forbidden(sess)
        item = state.products.get(sku)
        if item is None:
            return pages.message(
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
            return pages.page(
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

    @router.get("/cart")
    async def cart(request: Request) -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request)
        return pages.page("cart.html", sess, page="cart", **pages.cart_view(sess.email))

    @router.post("/cart/clear")
    async def cart_clear(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        _, sess = pages.current(request)
        if sess is None:
            return pages.to_login(request, "expired")
        if not hmac.compare_digest(sess.csrf_token, csrf_token):
            return pages.forbidden(sess)
        state.clear_cart(sess.email)
        return RedirectResponse("/cart", status_code=303)

    return router
