"""The Tryton purchase adapter (:class:`TrytonErp`) and the mapping of our units to Tryton's units of measure.

It drives Tryton's ``purchase`` module through :class:`~tools.erp.tryton_rpc.TrytonClient` (plain JSON-RPC,
see :mod:`tools.erp.tryton_rpc` for the protocol); the client, its codec and error mapping are re-exported
here, so ``from tools.erp.tryton import TrytonClient, TrytonErp`` names the whole Tryton integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tools.erp.base import (
    DRAFT,
    ErpAdapter,
    ErpLine,
    ErpNotFound,
    ErpOrder,
    ErpProtocolError,
    ErpRejected,
)
from tools.erp.tryton_rpc import REFERENCE_INDEX, TrytonClient, dumps, loads, map_tryton_error

if TYPE_CHECKING:
    from core.config import Settings

__all__ = [
    "REFERENCE_INDEX",
    "TRYTON_UOM_SYMBOLS",
    "TrytonClient",
    "TrytonErp",
    "canonical_unit",
    "dumps",
    "loads",
    "map_tryton_error",
    "tryton_uom_symbol",
]


#: Our canonical units -> the symbol of the Tryton unit of measure (product.uom) they map to. Units not listed
#: map to a UoM whose symbol is the unit itself (created by ``sandboxes.tryton``).
TRYTON_UOM_SYMBOLS: dict[str, str] = {"piece": "u", "kg": "kg", "litre": "l", "m": "m"}
_UNIT_ALIASES: dict[str, str] = {
    **dict.fromkeys(["pieces", "pcs", "pc", "unit", "units", "u", "each", "ea"], "piece"),
    **dict.fromkeys(["kgs", "kilo", "kilogram", "kilograms"], "kg"),
    **dict.fromkeys(["l", "liter", "liters", "litres", "ltr"], "litre"),
    **dict.fromkeys(["metre", "metres", "meter", "meters"], "m"),
    **dict.fromkeys(["tons", "tonne", "tonnes", "t"], "ton"),
}


def canonical_unit(unit: str) -> str:
    """Return our canonical spelling of a unit of measure (``"pcs"`` -> ``"piece"``), lower case."""
    u = unit.strip().lower()
    return _UNIT_ALIASES.get(u, u)


def tryton_uom_symbol(unit: str) -> str:
    """Return the symbol of the Tryton UoM that our ``unit`` maps to (``"piece"`` -> ``"u"``)."""
    u = canonical_unit(unit)
    return TRYTON_UOM_SYMBOLS.get(u, u)


# ---------------------------------------------------------------------------------------------------- adapter


@dataclass(frozen=True, slots=True)
class _Party:
    id: int
    code: str
    address_id: int | None


@dataclass(frozen=True, slots=True)
class _Product:
    id: int
    code: str
    name: str
    uom_id: int
    uom_symbol: str
    uom_name: str
    purchasable: bool


_ORDER_FIELDS = ["number", "reference", "state", "party.code"]


class TrytonErp(ErpAdapter):
    """The ERP adapter for Tryton (``purchase`` module), over :class:`TrytonClient`.

    Suppliers are ``party.party`` records found by ``code`` (our supplier code), products are
    ``product.product`` found by ``code`` (our SKU). Party, product, company and warehouse ids are cached per
    instance, so placing an order costs 5 round trips (search, create, quote, confirm, read back); the cache
    is dropped whenever the ERP rejects a create, in case it went stale.

    Args:
        client: a :class:`TrytonClient`; closed by :meth:`aclose` when ``owns_client``.
        owns_client: close the client with the adapter.
    """

    def __init__(self, client: TrytonClient, *, owns_client: bool = True) -> None:
        self.client = client
        self._owns_client = owns_client
        self._parties: dict[str, _Party] = {}
        self._products: dict[str, _Product] = {}
        self._company: tuple[int, int, int | None] | None = None  # company id, currency id, warehouse id

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> TrytonErp:
        """Adapter on a new client built from the ``ERP_*`` settings."""
        return cls(TrytonClient.from_settings(settings, **client_kwargs))

    async def aclose(self) -> None:
        """Close the client if this adapter owns it."""
        if self._owns_client:
            await self.client.aclose()

    def clear_cache(self) -> None:
        """Forget cached party, product, company and warehouse ids."""
        self._parties.clear()
        self._products.clear()
        self._company = None

    # -- reads ----------------------------------------------------------------------------------------------

    @staticmethod
    def _order_from_row(row: dict[str, Any]) -> ErpOrder:
        party = row.get("party.") or {}
        return ErpOrder(
            id=int(row["id"]),
            number=row.get("number") or None,
            reference=row.get("reference") or "",
            state=str(row["state"]),
            supplier_code=str(party.get("code") or ""),
        )

    async def find_by_reference(self, reference: str) -> ErpOrder | None:
        """Return the purchase whose ``reference`` equals ``reference`` exactly (1 round trip), or ``None``.

        With the unique index there is at most one; without it, the oldest one is returned.
        """
        rows = await self.client.model(
            "purchase.purchase",
            "search_read",
            [["reference", "=", reference]],
            0,
            1,
            [["id", "ASC"]],
            _ORDER_FIELDS,
        )
        return self._order_from_row(rows[0]) if rows else None

    async def get_order(self, order_id: int) -> ErpOrder:
        """Read an order (1 round trip).

        Raises:
            ErpNotFound: no purchase with this id (deleted, or another database).
        """
        rows = await self.client.model(
            "purchase.purchase", "search_read", [["id", "=", order_id]], 0, 1, None, _ORDER_FIELDS
        )
        if not rows:
            raise ErpNotFound(f"no ERP purchase with id {order_id}")
        return self._order_from_row(rows[0])

    async def _company_ids(self) -> tuple[int, int, int | None]:
        if self._company is None:
            await self.client.ensure_logged_in()
            company_id = self.client.context.get("company")
            if not company_id:
                raise ErpProtocolError(f"ERP user {self.client.login_name!r} has no current company")
            companies, warehouses = await asyncio.gather(
                self.client.model("company.company", "read", [company_id], ["currency"]),
                self.client.model("stock.location", "search", [["type", "=", "warehouse"]], 0, 1, [["id", "ASC"]]),
            )
            self._company = (
                int(company_id),
                int(companies[0]["currency"]),
                warehouses[0] if warehouses else None,
            )
        return self._company

    async def _party(self, code: str) -> _Party:
        party = self._parties.get(code)
        if party is None:
            rows = await self.client.model(
                "party.party", "search_read", [["code", "=", code]], 0, 1, None, ["code", "addresses"]
            )
            if not rows:
                raise ErpNotFound(f"unknown supplier {code!r}: no ERP party with this code")
            addresses = rows[0].get("addresses") or []
            party = _Party(int(rows[0]["id"]), code, int(addresses[0]) if addresses else None)
            self._parties[code] = party
        return party

    async def _resolve_products(self, codes: Sequence[str]) -> dict[str, _Product]:
        missing = sorted({c for c in codes if c not in self._products})
        if missing:
            rows = await self.client.model(
                "product.product",
                "search_read",
                [["code", "in", missing]],
                0,
                None,
                None,
                [
                    "code",
                    "rec_name",
                    "purchasable",
                    "purchase_uom",
                    "purchase_uom.symbol",
                    "purchase_uom.name",
                ],
            )
            for row in rows:
                uom = row.get("purchase_uom.") or {}
                if not row.get("purchase_uom"):
                    continue  # not purchasable: no purchase unit; reported below
                self._products[row["code"]] = _Product(
                    id=int(row["id"]),
                    code=row["code"],
                    name=row.get("rec_name") or row["code"],
                    uom_id=int(row["purchase_uom"]),
                    uom_symbol=str(uom.get("symbol") or ""),
                    uom_name=str(uom.get("name") or ""),
                    purchasable=bool(row.get("purchasable")),
                )
            unknown = [c for c in missing if c not in self._products]
            if unknown:
                raise ErpNotFound(f"unknown or non-purchasable product code(s) in the ERP: {', '.join(unknown)}")
        return {c: self._products[c] for c in codes}

    # -- writes ---------------------------------------------------------------------------------------------

    async def create_purchase(
        self, reference: str, supplier_code: str, lines: Sequence[ErpLine], description: str
    ) -> ErpOrder:
        """Create a draft purchase with its lines in ONE ``create`` call (atomic: all or nothing).

        Sets company, currency, warehouse, party, invoice address (the party's first address: Tryton fills it
        through ``on_change_party`` only in the client), ``reference``, ``description``; each line gets the
        product, quantity, the product's purchase unit, the unit price and a description.

        Returns:
            The draft order (``number`` is ``None``: Tryton numbers it at quotation).

        Raises:
            ErpNotFound: unknown supplier or product code, or a supplier without address (nothing written).
            ErpRejected: a line's unit is not the product's purchase unit, or Tryton refused the values.
            ErpDuplicate: the reference is already used.
            ErpUnavailable, ErpAuthError, ErpProtocolError: see :meth:`TrytonClient.call`.
        """
        if not lines:
            raise ErpRejected(f"purchase {reference} has no lines")
        # Lookups are independent: on a cold cache they run concurrently.
        (company_id, currency_id, warehouse_id), party, products = await asyncio.gather(
            self._company_ids(),
            self._party(supplier_code),
            self._resolve_products([ln.product_code for ln in lines]),
        )
        if party.address_id is None:
            raise ErpNotFound(f"supplier {supplier_code!r} has no address in the ERP (needed to invoice)")
        line_values = []
        for ln in lines:
            product = products[ln.product_code]
            if not product.purchasable:
                raise ErpRejected(f"product {product.code} is not purchasable in the ERP")
            if not _unit_matches(ln.unit, product):
                raise ErpRejected(
                    f"product {product.code} is bought in {product.uom_name!r} ({product.uom_symbol}) "
                    f"in the ERP, the line says {ln.unit!r}"
                )
            line_values.append(
                {
                    "type": "line",
                    "product": product.id,
                    # purchase.line.quantity is a Float field; unit_price is Numeric and travels as Decimal.
                    "quantity": float(ln.quantity),
                    "unit": product.uom_id,
                    "unit_price": ln.unit_price,
                    "description": ln.description or product.name,
                }
            )
        values: dict[str, Any] = {
            "company": company_id,
            "currency": currency_id,
            "party": party.id,
            "invoice_address": party.address_id,
            "reference": reference,
            "description": description,
            "lines": [["create", line_values]],
        }
        if warehouse_id is not None:
            values["warehouse"] = warehouse_id
        try:
            ids = await self.client.model("purchase.purchase", "create", [values])
        except ErpRejected:
            self.clear_cache()  # a stale id (product deleted in the ERP...) must not fail every later order
            raise
        return ErpOrder(id=int(ids[0]), number=None, reference=reference, state=DRAFT, supplier_code=supplier_code)

    async def quote(self, order_id: int) -> None:
        """``purchase.purchase.quote``: draft -> quotation; Tryton assigns the number.

        Raises:
            ErpRejected: not a draft (Tryton: 'You can not call "quote" on ...', the button's state check).
        """
        await self.client.model("purchase.purchase", "quote", [order_id])

    async def confirm(self, order_id: int) -> None:
        """``purchase.purchase.confirm``: quotation -> confirmed, then processed (draft invoice, stock moves).

        Raises:
            ErpRejected: not a quotation.
        """
        await self.client.model("purchase.purchase", "confirm", [order_id])

    async def delete_draft(self, order_id: int) -> None:
        """Cancel then delete a purchase that was never confirmed (2 round trips).

        Raises:
            ErpRejected: the purchase is confirmed or later (Tryton refuses to cancel or delete it).
        """
        await self.client.model("purchase.purchase", "cancel", [order_id])
        await self.client.model("purchase.purchase", "delete", [order_id])


def _unit_matches(unit: str, product: _Product) -> bool:
    """True when our ``unit`` names the product's purchase UoM (by symbol or name, case-insensitive)."""
    u = canonical_unit(unit)
    wanted = {tryton_uom_symbol(u), u}
    return product.uom_symbol.lower() in wanted or canonical_unit(product.uom_name) in wanted
