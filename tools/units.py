"""Units of measure: spelling normalisation and conversion to the catalogue unit.

People write ``bx``, ``boxes``, ``pkts``, ``ltrs``, ``kgs``, ``pcs``, ``doz``; the catalogue prices each item
in one unit of measure (UoM). This module maps the spellings to canonical unit names and converts a requested
quantity into the item's unit when the conversion is exact:

* within one dimension: dozen -> piece (x12), g <-> kg <-> ton, ml <-> litre, cm <-> m;
* a packet of an item sold by the piece whose name states one piece's size (``"Fresh milk 500 ml"``) is that
  piece;
* through a pack size stated in the item name: ``"(box of 5 reams)"``, ``"(pack of 10 rolls)"``,
  ``"(box of 1000)"`` (pieces), ``"Cement 42.5N 50kg bag"``, ``"Bleach 5 litre"``, ``"(12 m length)"``.

A conversion that would give a fractional count of a countable unit, or that has no rule, is never guessed:
:func:`convert` returns the request unchanged with ``exact=False`` and a note, so the caller can ask.
All quantities are ``Decimal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from core.domain import CatalogItem

# Spelling -> canonical unit. Keys are lower case, without a trailing full stop.
UNIT_ALIASES: dict[str, str] = {
    **dict.fromkeys(["box", "boxes", "bx", "bxs", "bxes"], "box"),
    **dict.fromkeys(["pack", "packs", "pkt", "pkts", "packet", "packets", "pk", "pks", "pck"], "pack"),
    **dict.fromkeys(["ream", "reams", "rm", "rms"], "ream"),
    **dict.fromkeys(["carton", "cartons", "ctn", "ctns"], "carton"),
    **dict.fromkeys(["bag", "bags", "sack", "sacks"], "bag"),
    **dict.fromkeys(
        ["litre", "litres", "liter", "liters", "l", "lt", "lts", "ltr", "ltrs", "lit"],
        "litre",
    ),
    **dict.fromkeys(["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme"], "kg"),
    **dict.fromkeys(["g", "gm", "gms", "gram", "grams", "gramme", "grammes"], "g"),
    **dict.fromkeys(["m", "metre", "metres", "meter", "meters", "mtr", "mtrs", "mts"], "m"),
    **dict.fromkeys(
        ["piece", "pieces", "pcs", "pc", "pce", "unit", "units", "nos", "no"],
        "piece",
    ),
    **dict.fromkeys(["dozen", "dozens", "doz", "dz"], "dozen"),
    **dict.fromkeys(["ton", "tons", "tonne", "tonnes", "t"], "ton"),
    **dict.fromkeys(["roll", "rolls"], "roll"),
    **dict.fromkeys(["ml", "millilitre", "millilitres", "milliliter", "milliliters", "mls"], "ml"),
    **dict.fromkeys(["cm", "cms", "centimetre", "centimetres", "centimeter", "centimeters"], "cm"),
    # Swahili: mfuko/mifuko (bag), lita (litre), pakiti (packet), boksi (box), kipande/vipande (piece),
    # tani (ton).
    **{"mfuko": "bag", "mifuko": "bag", "lita": "litre", "pakiti": "pack", "boksi": "box", "tani": "ton"},
    **{"kipande": "piece", "vipande": "piece"},
    # Containers of one item sold by the piece ("2 bottles of bleach", "4 buckets of paint"); for an item sold
    # by measure they have no rule and are asked about.
    **dict.fromkeys(
        [
            "bottle",
            "bottles",
            "btl",
            "btls",
            "bucket",
            "buckets",
            "tin",
            "tins",
            "jerrican",
            "jerricans",
            "jerrycan",
            "jerrycans",
            "chupa",
            "ndoo",
        ],
        "piece",
    ),  # fmt: skip
    # A lorry (truck, trip) load is a real quantity with no fixed size: it is kept and asked about.
    **dict.fromkeys(["lorry", "lorries", "lori", "truck", "trucks", "tipper", "tippers"], "lorry"),
}

# Spellings too short or too common to read as a unit when they stand alone as a word
# ("no" in "no need", "t" in "can't", "m" in "I'm"); they still count when glued to a number ("5l", "12m").
_GLUED_ONLY = frozenset({"l", "t", "m", "g", "no", "rm", "lit", "pk"})

# Canonical units that are counted in whole numbers.
COUNTABLE_UNITS = frozenset({"piece", "box", "pack", "ream", "carton", "bag", "roll", "dozen"})

# Measured units: (dimension, size in the dimension's base unit).
_MEASURES: dict[str, tuple[str, Decimal]] = {
    "g": ("mass", Decimal(1)),
    "kg": ("mass", Decimal(1000)),
    "ton": ("mass", Decimal(1_000_000)),
    "ml": ("volume", Decimal(1)),
    "litre": ("volume", Decimal(1000)),
    "cm": ("length", Decimal(1)),
    "m": ("length", Decimal(100)),
    "piece": ("count", Decimal(1)),
    "dozen": ("count", Decimal(12)),
}

_PACK_OF_RE = re.compile(
    r"\b(?:box|pack|packet|carton|bag|case|set|roll)\s+of\s+(\d+(?:\.\d+)?)\s*([a-z]+)?",
    re.IGNORECASE,
)
_SIZE_RE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(kg|g|litres?|liters?|l|ml|m|metres?|meters?|ton|tonnes?)\b",
    re.IGNORECASE,
)


def normalize_unit(token: str, *, standalone: bool = True) -> str | None:
    """Return the canonical unit for a spelling, or ``None`` when it is not a unit.

    Args:
        token: one word as written (``"Boxes"``, ``"pkts"``, ``"ltrs."``).
        standalone: ``True`` when the token is a word of its own; very short or ambiguous spellings
            (``"l"``, ``"m"``, ``"no"``) are then refused. Pass ``False`` for a suffix glued to a number.

    Returns:
        One of the canonical units (``box``, ``pack``, ``ream``, ``carton``, ``bag``, ``litre``, ``kg``,
        ``g``, ``m``, ``piece``, ``dozen``, ``ton``, ``roll``, ``ml``, ``cm``) or ``None``.
    """
    key = token.lower().rstrip(".")
    if standalone and key in _GLUED_ONLY:
        return None
    return UNIT_ALIASES.get(key)


@dataclass(frozen=True, slots=True)
class PackSize:
    """How much of a smaller unit one catalogue unit holds, read from the item name.

    Attributes:
        count: how many ``unit`` per catalogue unit (``5`` for ``"(box of 5 reams)"``).
        unit: canonical inner unit (``ream``, ``piece``, ``kg``, ``litre``, ``m``...).
    """

    count: Decimal
    unit: str


def pack_size(item: CatalogItem) -> PackSize | None:
    """Read the pack size stated in a countable item's name.

    Args:
        item: a catalogue item; only items sold in a countable unit (box, pack, piece, bag...) have one.

    Returns:
        The pack size, e.g. ``PackSize(5, "ream")`` for ``"A4 copy paper 80gsm (box of 5 reams)"``,
        ``PackSize(1000, "piece")`` for ``"Staples 26/6 (box of 1000)"``, ``PackSize(50, "kg")`` for
        ``"Cement 42.5N 50kg bag"``; ``None`` when the name states none or the item is sold by measure.
    """
    if item.unit not in COUNTABLE_UNITS:
        return None
    m = _PACK_OF_RE.search(item.name)
    if m:
        inner = normalize_unit(m.group(2), standalone=False) if m.group(2) else None
        if m.group(2) and inner is None:
            inner = "piece"  # "(box of 50 sheets)": a count of things
        return PackSize(Decimal(m.group(1)), inner or "piece")
    m = _SIZE_RE.search(item.name)
    if m:
        unit = normalize_unit(m.group(2), standalone=False)
        if unit is not None:
            return PackSize(Decimal(m.group(1)), unit)
    return None


def _is_single_size(item: CatalogItem) -> bool:
    """Whether an item is sold by the piece and its name states the small size (g, ml) of that one piece.

    A packet of "Fresh milk 500 ml" is one piece; larger sizes ("Bleach 5 litre", a water refill) are not packets.
    """
    if item.unit != "piece" or _PACK_OF_RE.search(item.name) is not None:
        return False
    m = _SIZE_RE.search(item.name)
    return m is not None and normalize_unit(m.group(2), standalone=False) in ("g", "ml")


@dataclass(frozen=True, slots=True)
class Conversion:
    """Outcome of converting a requested quantity into an item's catalogue unit.

    Attributes:
        quantity: the converted quantity, or the requested one when ``exact`` is ``False``.
        unit: the catalogue unit, or the requested unit when ``exact`` is ``False``.
        exact: ``True`` when the quantity is in the catalogue unit (no guess was made).
        note: why the conversion was refused, for the line description or a question; ``None`` when exact.
        fractional: ``True`` when a rule exists but gives a fractional count (``7 reams`` = 1.4 boxes);
            ``False`` when exact or when no rule links the units.
    """

    quantity: Decimal
    unit: str
    exact: bool
    note: str | None = None
    fractional: bool = False


def tidy(q: Decimal) -> Decimal:
    """Return ``q`` without exponent or trailing zeros (``Decimal("10")`` not ``"1E+1"``)."""
    if q == q.to_integral_value():
        return q.quantize(Decimal(1))
    return q.normalize()


def _in_dimension(quantity: Decimal, unit: str, target: str) -> Decimal | None:
    """Convert between two units of one dimension, or ``None`` when they are not comparable."""
    a, b = _MEASURES.get(unit), _MEASURES.get(target)
    if a is None or b is None or a[0] != b[0]:
        return None
    return quantity * a[1] / b[1]


def _fmt(q: Decimal, unit: str) -> str:
    return f"{tidy(q)} {unit}"


def convert(quantity: Decimal, unit: str | None, item: CatalogItem) -> Conversion:
    """Convert a requested quantity to the item's catalogue unit when that is exact.

    Args:
        quantity: the amount asked for (``Decimal``, > 0).
        unit: canonical unit asked for (see :func:`normalize_unit`), or ``None`` when the person named no
            unit, which is read as the catalogue unit.
        item: the catalogue item; its ``unit`` is the target and its name may state a pack size.

    Returns:
        A :class:`Conversion`. ``exact`` is ``False`` (request kept as given, with a ``note``) when no rule
        links the units, or when the result would be a fractional count of a countable catalogue unit
        (``7 reams`` of paper sold in boxes of 5).
    """
    target = item.unit
    if unit is None or unit == target:
        return Conversion(tidy(quantity), target, True)
    if unit == "pack" and target == "piece" and _is_single_size(item):
        # "20 packets of milk" where one piece is "Fresh milk 500 ml": the packet is the piece.
        return Conversion(tidy(quantity), target, True)

    converted = _in_dimension(quantity, unit, target)
    via = ""
    if converted is None:
        pack = pack_size(item)
        if pack is not None:
            inner = quantity if unit == pack.unit else _in_dimension(quantity, unit, pack.unit)
            if inner is not None:
                converted = inner / pack.count
                via = f" ({target} of {_fmt(pack.count, pack.unit)})"
    if converted is None:
        return Conversion(
            tidy(quantity),
            unit,
            False,
            f"asked for {_fmt(quantity, unit)}; no rule converts {unit} to {target}",
        )
    if target in COUNTABLE_UNITS and converted != converted.to_integral_value():
        return Conversion(
            tidy(quantity),
            unit,
            False,
            f"asked for {_fmt(quantity, unit)} = {tidy(converted):f} {target}{via}, not a whole number",
            fractional=True,
        )
    return Conversion(tidy(converted), target, True)
