"""Reply composition from the templates in ``prompts/replies.toml`` (never written by the LLM).

Outbound message dicts (``{"to", "type", ...}``) are what the worker sends through the chat's channel:
``text`` (``text``), ``buttons`` (``text``, ``buttons``: ``[[id, title], ...]`` at most 3, titles <= 20) and
``list`` (``text``, ``button``, ``rows``: ``[[id, title, description], ...]`` at most 10).
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from core.domain import Line, Money
from prompts import PROMPTS_DIR


@lru_cache(maxsize=1)
def _templates() -> dict[str, Any]:
    with open(PROMPTS_DIR / "replies.toml", "rb") as fh:
        return tomllib.load(fh)


def t(template: str, /, **kwargs: Any) -> str:
    """Render text template ``template`` with ``kwargs``.

    Raises:
        KeyError: unknown template or missing placeholder.
    """
    return str(_templates()["text"][template]).format(**kwargs)


def button_title(name: str) -> str:
    """Title of a standard button (at most 20 characters)."""
    return str(_templates()["buttons"][name])[:20]


def text_msg(to: str, text: str) -> dict[str, Any]:
    """A plain text outbound message."""
    return {"to": to, "type": "text", "text": text}


def buttons_msg(to: str, text: str, buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """A reply-buttons outbound message (WhatsApp: at most 3 buttons, titles at most 20 characters)."""
    return {"to": to, "type": "buttons", "text": text, "buttons": [[i, title[:20]] for i, title in buttons[:3]]}


def list_msg(to: str, text: str, button: str, rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A list outbound message (at most 10 rows; title 24, description 72 characters)."""
    return {
        "to": to,
        "type": "list",
        "text": text,
        "button": button[:20],
        "rows": [[i, title[:24], desc[:72]] for i, title, desc in rows[:10]],
    }


def fmt_qty(q: Any) -> str:
    """Quantity without trailing zeros (``20``, ``2.5``)."""
    s = format(q.normalize(), "f") if hasattr(q, "normalize") else str(q)
    return s


def fmt_amount(amount: str) -> str:
    """A person's amount as words, plural where it counts things: ``"96 bottle"`` -> ``"96 bottles"``."""
    number, _, unit = amount.partition(" ")
    if not unit or unit in _MEASURE_WORDS:
        return amount
    try:
        many = Decimal(number) != 1
    except ArithmeticError:
        return amount
    return f"{number} {unit}{'s' if many and not unit.endswith('s') else ''}"


_MEASURE_WORDS = frozenset({"kg", "g", "ml", "m", "cm", "mm", "litre", "ton"})


def fmt_date(d: date | None) -> str:
    """``Fri 20 Nov 2026`` or ``—``."""
    return d.strftime("%a %d %b %Y") if d else "—"


def render_lines(lines: list[Line]) -> list[str]:
    """One text row per line, with SKU, price and line total where known."""
    out = []
    for n, ln in enumerate(lines, 1):
        if ln.sku is None and ln.candidates:
            out.append(
                t("line_candidates", n=n, description=ln.description, quantity=fmt_qty(ln.quantity), unit=ln.unit)
            )
            continue
        price = ""
        if ln.unit_price is not None and ln.total is not None:
            price = t("line_price", unit_price=str(ln.unit_price), total=str(ln.total))
        sku = f" ({ln.sku})" if ln.sku else t("line_free_text")
        if ln.sku and ln.candidates:
            sku += t("line_check")  # the one close catalogue item: confirmed with the rest, not asked apart
        asked = t("line_asked", asked=fmt_amount(ln.asked)) if ln.asked else ""
        out.append(
            t(
                "line",
                n=n,
                description=ln.description,
                quantity=fmt_qty(ln.quantity),
                unit=ln.unit,
                sku=asked + sku,
                price=price,
            )
        )
    return out


def render_summary(
    header: str, lines: list[Line], site: str | None, needed_by: date | None, total: Money | None
) -> str:
    """A request summary: header, lines, site, date and estimated total."""
    parts = [header, *render_lines(lines)]
    if site:
        parts.append(t("site", site=site))
    if needed_by:
        parts.append(t("needed_by", needed_by=fmt_date(needed_by)))
    if total is not None and total.amount:
        parts.append(t("total", total=str(total)))
    return "\n".join(parts)
