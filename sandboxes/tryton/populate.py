"""Reference Tryton, populate (runs in a child process): company, accounts, fiscal year, suppliers, products, index.

Through proteus in ``trytond`` mode (no server), following the module test helpers' sequence
(``company/tests/tools.py`` ``create_company``, ``account/tests/tools.py`` ``create_chart`` and
``create_fiscalyear``, ``account_invoice/tests/tools.py`` ``set_fiscalyear_invoice_sequences``). The child
process keeps trytond's process-wide state (configuration, pool) out of the caller::

    python -m sandboxes.tryton.populate populate --config FILE --database NAME < spec.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sandboxes.tryton.processes import ErpSetupError
from tools.erp.tryton import REFERENCE_INDEX, TRYTON_UOM_SYMBOLS

logger = logging.getLogger(__name__)

#: Our units mapped onto UoMs that the ``product`` module ships (``product/uom.xml``).
_STANDARD_UOMS = {
    "piece": "product.uom_unit",
    "kg": "product.uom_kilogram",
    "litre": "product.uom_liter",
    "m": "product.uom_meter",
}
assert set(_STANDARD_UOMS) == set(TRYTON_UOM_SYMBOLS)
#: Units created by setup outside the Units category: category xml id, factor to its reference unit, rounding.
_WEIGHT_UOMS = {"ton": ("product.uom_cat_weight", 1000.0, 0.001)}
_CURRENCY_NAMES = {
    "USD": ("U.S. Dollar", "$"),
    "EUR": ("Euro", "€"),
    "KES": ("Kenyan Shilling", "KSh"),
    "GBP": ("Pound Sterling", "£"),
    "UGX": ("Ugandan Shilling", "USh"),
    "TZS": ("Tanzanian Shilling", "TSh"),
}


def populate(config_file: str, database: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Create or update company, accounts, fiscal year, suppliers, products and the unique index.

    Runs inside the child process: proteus in ``trytond`` mode (no server), user ``admin``.
    """
    from proteus import Model, Wizard
    from proteus import config as pconfig

    cfg = pconfig.set_trytond(database=database, config_file=config_file)
    Currency = Model.get("currency.currency")
    CurrencyRate = Model.get("currency.currency.rate")
    Company = Model.get("company.company")
    Party = Model.get("party.party")
    User = Model.get("res.user")
    ModelData = Model.get("ir.model.data")
    Account = Model.get("account.account")

    def currency_for(code: str) -> Any:
        found = Currency.find([("code", "=", code)])
        if found:
            return found[0]
        name, symbol = _CURRENCY_NAMES.get(code, (code, code))
        cur = Currency(name=name, symbol=symbol, code=code, rounding=Decimal("0.01"))
        cur.save()
        # Same as currency/tests/tools.py get_currency: a rate from the beginning of time.
        CurrencyRate(date=dt.date.min, rate=Decimal("1.0"), currency=cur).save()
        return cur

    def xml_record(model: str, fs_id: str) -> Any:
        return Model.get(model)(ModelData.get_id(*fs_id.split(".", 1), cfg.context))

    # Company (company/tests/tools.py create_company).
    companies = Company.find([])
    if not companies:
        currency = currency_for(spec["currency"])
        party = Party(name=spec["company"])
        party.save()
        company_config = Wizard("company.company.config")
        company_config.execute("company")
        form = company_config.form
        form.party = party
        form.currency = currency
        company_config.execute("add")
        company = Company.find([])[0]
    else:
        company = companies[0]
        if company.party.name != spec["company"]:
            company.party.name = spec["company"]
            company.party.save()
        if company.currency.code != spec["currency"]:
            logger.warning(
                "company currency is %s, not %s: Tryton does not change it once set",
                company.currency.code,
                spec["currency"],
            )
    cfg._context = User.get_preferences(True, {})

    # Chart of accounts (account/tests/tools.py create_chart + get_accounts).
    if not Account.find([("company", "=", company.id)], limit=1):
        template = xml_record("account.account.template", "account.account_template_root_en")
        create_chart = Wizard("account.create_chart")
        create_chart.execute("account")
        create_chart.form.account_template = template
        create_chart.form.company = company
        create_chart.execute("create_account")
        accounts = _accounts(Account, company)
        create_chart.form.account_receivable = accounts["receivable"]
        create_chart.form.account_payable = accounts["payable"]
        if hasattr(create_chart.form, "category_account_expense"):
            create_chart.form.category_account_expense = accounts["expense"]
        if hasattr(create_chart.form, "category_account_revenue"):
            create_chart.form.category_account_revenue = accounts["revenue"]
        create_chart.execute("create_properties")
    accounts = _accounts(Account, company)

    _ensure_fiscal_year(company)

    # Accounting product category (the purchase scenario's "Account Category").
    ProductCategory = Model.get("product.category")
    cat_name = "Procurement"
    cats = ProductCategory.find([("name", "=", cat_name), ("accounting", "=", True)], limit=1)
    category = cats[0] if cats else ProductCategory(name=cat_name, accounting=True)
    if category.account_expense != accounts["expense"] or category.account_revenue != accounts["revenue"]:
        category.account_expense = accounts["expense"]
        category.account_revenue = accounts["revenue"]
        category.save()

    # Units of measure.
    Uom = Model.get("product.uom")
    uoms: dict[str, Any] = {}
    for unit in sorted({row["unit"] for row in spec["items"]}):
        if unit in _STANDARD_UOMS:
            uoms[unit] = xml_record("product.uom", _STANDARD_UOMS[unit])
            continue
        found = Uom.find([("symbol", "=", unit)], limit=1)
        if found:
            uoms[unit] = found[0]
            continue
        cat_id, factor, rounding = _WEIGHT_UOMS.get(unit, ("product.uom_cat_unit", 1.0, 1.0))
        uom = Uom(
            name=unit.capitalize(),
            symbol=unit,
            category=xml_record("product.uom.category", cat_id),
            factor=factor,
            rate=round(1 / factor, 12),
            rounding=rounding,
            digits=max(0, -Decimal(str(rounding)).as_tuple().exponent),  # type: ignore[operator]
        )
        uom.save()
        uoms[unit] = uom

    # Supplier parties: code = our supplier code, with one address (the purchase's invoice address).
    parties: dict[str, Any] = {}
    for code in sorted({row["supplier"] for row in spec["items"]}):
        found = Party.find([("code", "=", code)], limit=1)
        party = found[0] if found else Party(code=code, name=code)
        if not found:
            party.save()
        if not party.addresses:
            party.addresses.new(street_unstructured=f"{code} (address to be completed)")
            party.save()
        parties[code] = party

    # Products: template code = SKU (product code = template code + empty suffix), purchase UoM,
    # supplier and price.
    Template = Model.get("product.template")
    Product = Model.get("product.product")
    ProductSupplier = Model.get("purchase.product_supplier")
    ProductSupplierPrice = Model.get("purchase.product_supplier.price")
    for row in spec["items"]:
        uom = uoms[row["unit"]]
        found = Product.find([("code", "=", row["sku"])], limit=1)
        if found:
            template = found[0].template
            changed = False
            for field, value in (
                ("name", row["name"]),
                ("purchasable", True),
                ("account_category", category),
            ):
                if getattr(template, field) != value:
                    setattr(template, field, value)
                    changed = True
            if template.default_uom != uom or template.purchase_uom != uom:
                template.default_uom = uom
                template.purchase_uom = uom
                changed = True
            if changed:
                template.save()
        else:
            template = Template(
                name=row["name"],
                code=row["sku"],
                type="goods",
                default_uom=uom,
                purchasable=True,
                purchase_uom=uom,
                list_price=Decimal("0"),
                cost_price_method="fixed",
                account_category=category,
            )
            template.save()
        price = Decimal(row["price"])
        supplier = parties[row["supplier"]]
        links = ProductSupplier.find([("template", "=", template.id), ("party", "=", supplier.id)], limit=1)
        link = links[0] if links else ProductSupplier(template=template, party=supplier)
        currency = currency_for(row["currency"])
        dirty = not links or link.currency != currency
        link.currency = currency
        prices = list(link.prices)
        if len(prices) == 1 and prices[0].quantity == 0:
            if prices[0].unit_price != price:
                prices[0].unit_price = price
                dirty = True
        else:
            if prices:
                # Removing from the One2Many would only unlink them (and trip the company rule): delete.
                ProductSupplierPrice.delete(prices)
                link.reload()
            link.prices.new(quantity=0.0, unit_price=price)
            dirty = True
        if dirty:
            link.save()

    if spec.get("login") and spec["login"] != "admin":
        _ensure_user(User, spec["login"], spec.get("password"), company)

    _ensure_reference_index(database)
    return {"suppliers": sorted(parties), "products": len(spec["items"])}


def _accounts(Account: Any, company: Any) -> dict[str, Any]:
    """Receivable, payable, revenue, expense accounts of the chart (account/tests/tools.py get_accounts)."""
    accounts = {}
    for kind in ("receivable", "payable", "revenue", "expense"):
        found = Account.find(
            [(f"type.{kind}", "=", True), ("company", "=", company.id), ("closed", "!=", True)], limit=1
        )
        if not found:
            raise ErpSetupError(f"the chart of accounts has no {kind} account")
        accounts[kind] = found[0]
    return accounts


def _ensure_fiscal_year(company: Any) -> None:
    """A fiscal year with monthly periods covering today (account/tests/tools.py create_fiscalyear)."""
    from dateutil.relativedelta import relativedelta
    from proteus import Model

    FiscalYear = Model.get("account.fiscalyear")
    today = dt.date.today()
    if FiscalYear.find([("company", "=", company.id), ("start_date", "<=", today), ("end_date", ">=", today)]):
        return
    Sequence = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    start = today - relativedelta(months=6, day=1)
    end = today + relativedelta(months=5, day=31)
    # Do not overlap an existing fiscal year (Tryton refuses): start the day after the last one ends.
    previous = FiscalYear.find([("company", "=", company.id), ("end_date", ">=", start)], order=[("end_date", "DESC")])
    if previous:
        start = previous[0].end_date + dt.timedelta(days=1)
    name = f"{start:%Y-%m}..{end:%Y-%m}"
    fiscalyear = FiscalYear(name=name, start_date=start, end_date=end, company=company)
    move_type = SequenceType.find([("name", "=", "Account Move")], limit=1)[0]
    move_seq = Sequence(name=name, sequence_type=move_type, company=company)
    move_seq.save()
    fiscalyear.move_sequence = move_seq
    # account_invoice/tests/tools.py set_fiscalyear_invoice_sequences.
    invoice_type = SequenceType.find([("name", "=", "Invoice")], limit=1)[0]
    invoice_seq = Sequence(name=name, sequence_type=invoice_type, company=company)
    invoice_seq.save()
    seq = fiscalyear.invoice_sequences[0]
    seq.out_invoice_sequence = invoice_seq
    seq.in_invoice_sequence = invoice_seq
    seq.out_credit_note_sequence = invoice_seq
    seq.in_credit_note_sequence = invoice_seq
    fiscalyear.save()
    fiscalyear.click("create_period")


def _ensure_user(User: Any, login: str, password: str | None, company: Any) -> None:
    """An ERP user other than admin, in every access group, working for the company.

    Tryton's admin holds no groups (it is the ``administrator`` user), so there is nothing to copy from it.
    """
    from proteus import Model

    found = User.find([("login", "=", login)], limit=1)
    user = found[0] if found else User(login=login, name=login)
    have = {g.id for g in user.groups}
    for group in Model.get("res.group").find([]):
        if group.id not in have:
            user.groups.append(group)
    if company not in user.companies:
        user.companies.append(company)
    user.company = company
    if password:
        user.password = password
    user.save()


def _ensure_reference_index(database: str) -> None:
    """UNIQUE index on ``purchase_purchase(reference)``, ignoring empty references.

    Raises:
        ErpSetupError: existing purchases share a reference (listed), so the index cannot be created.
    """
    from trytond.transaction import Transaction

    with Transaction().start(database, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(
            "SELECT reference FROM purchase_purchase WHERE reference IS NOT NULL AND reference <> '' "
            "GROUP BY reference HAVING COUNT(*) > 1"
        )
        duplicates = [r[0] for r in cursor.fetchall()]
        if duplicates:
            raise ErpSetupError(
                f"purchases share references {duplicates[:10]}; fix them before the unique index can be created"
            )
        cursor.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {REFERENCE_INDEX} ON purchase_purchase (reference) "
            "WHERE reference IS NOT NULL AND reference <> ''"
        )
        transaction.commit()


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.tryton.populate")
    sub = parser.add_subparsers(dest="command", required=True)
    pop = sub.add_parser("populate", help="create/update company, accounts, suppliers, products (spec on stdin)")
    pop.add_argument("--config", required=True)
    pop.add_argument("--database", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    spec = json.load(sys.stdin)
    result = populate(args.config, args.database, spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
