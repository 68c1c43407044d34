"""Units of measure and pack sizes: spelling and ERP UoM codes normalised, quantities converted to the catalogue unit.

People write ``bx``, ``boxes``, ``pkts``, ``ltrs``, ``kgs``, ``pcs``, ``doz``, ``mifuko``, ``ndoo``; item masters
write UoM codes (``PCS``, ``EA``, ``PKT``, ``BKT``, ``JCN``, ``CTN``, ``LTR``...) and state pack sizes in the item
name in many shapes (``- PACK 24``, ``BOX 5 REAMS``, ``(box of 1000)``, ``50KG BAG``, ``20L JERRYCAN``,
``PACK 10 ROLLS``). Everything here is read from those general-language forms; no product vocabulary.

:func:`convert` turns what a person asked for into the item's catalogue unit when that is exact:

* the same unit, or a container that is the catalogue unit itself (``6 jerrycans`` of an item sold by the jerrycan);
* within one dimension: dozen -> piece (x12), g <-> kg <-> ton, ml <-> litre, cm <-> m;
* through the pack the name states: ``96 bottles`` of ``WATER 500ML - PACK 24`` is 4 packs, ``15 reams`` of
  ``PAPER A4 - BOX 5 REAMS`` is 3 boxes, ``500 kg`` of ``CEMENT 50KG BAG`` is 10 bags, ``12 litres`` of
  ``WATER 500ML - PACK 24`` is 1 pack;
* a piece of an item sold by the piece, bottle, tin... (one thing is one catalogue unit).

A conversion that would give a fractional count of a countable unit, or that has no rule, is never guessed:
:func:`convert` returns the request unchanged with ``exact=False`` (and, for a fraction, the whole number of
catalogue units that covers it as ``proposal``), so the caller asks. All quantities are ``Decimal``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from core.domain import CatalogItem

# Containers: things an item comes in, counted like pieces ("6 jerrycans", "2 buckets", "mifuko 70").
CONTAINERS = frozenset(
    {"bottle", "bucket", "tin", "can", "jerrycan", "drum", "tube", "sachet", "crate", "tray", "bundle", "bale", "sheet",
     "pair", "set", "length", "tablet", "vial", "ampoule", "kit"}
)  # fmt: skip

# Spelling (and ERP UoM code) -> canonical unit. Keys are lower case, without a trailing full stop.
UNIT_ALIASES: dict[str, str] = {
    **dict.fromkeys(["box", "boxes", "bx", "bxs", "bxes", "boksi", "maboksi"], "box"),
    **dict.fromkeys(
        ["pack", "packs", "pkt", "pkts", "packet", "packets", "pk", "pks", "pck", "pak", "pakiti", "paketi"], "pack"
    ),
    **dict.fromkeys(["ream", "reams", "rm", "rms", "rimu"], "ream"),
    **dict.fromkeys(["carton", "cartons", "ctn", "ctns", "case", "cases", "katoni"], "carton"),
    **dict.fromkeys(["bag", "bags", "bg", "sack", "sacks", "mfuko", "mifuko", "gunia", "magunia"], "bag"),
    **dict.fromkeys(["litre", "litres", "liter", "liters", "l", "lt", "lts", "ltr", "ltrs", "lit", "lita"], "litre"),
    **dict.fromkeys(["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme"], "kg"),
    **dict.fromkeys(["g", "gm", "gms", "gram", "grams", "gramme", "grammes", "gramu"], "g"),
    **dict.fromkeys(["m", "metre", "metres", "meter", "meters", "mtr", "mtrs", "mts", "mita"], "m"),
    **dict.fromkeys(
        [
            "piece",
            "pieces",
            "pcs",
            "pc",
            "pce",
            "unit",
            "units",
            "nos",
            "no",
            "ea",
            "each",
            "kipande",
            "vipande",
            "loaf",
            "loaves",
        ],
        "piece",
    ),
    **dict.fromkeys(["dozen", "dozens", "doz", "dz", "dazeni"], "dozen"),
    **dict.fromkeys(["ton", "tons", "tonne", "tonnes", "t", "mt", "tani"], "ton"),
    **dict.fromkeys(["roll", "rolls", "rl", "rol", "roli"], "roll"),
    **dict.fromkeys(["ml", "millilitre", "millilitres", "milliliter", "milliliters", "mls"], "ml"),
    **dict.fromkeys(["cm", "cms", "centimetre", "centimetres", "centimeter", "centimeters"], "cm"),
    **dict.fromkeys(["mm", "millimetre", "millimetres", "millimeter", "millimeters"], "mm"),
    **dict.fromkeys(["bottle", "bottles", "btl", "btls", "chupa"], "bottle"),
    **dict.fromkeys(["bucket", "buckets", "bkt", "bkts", "ndoo"], "bucket"),
    **dict.fromkeys(["tin", "tins", "mkebe", "makopo"], "tin"),
    **dict.fromkeys(["can", "cans"], "can"),
    **dict.fromkeys(
        ["jerrycan", "jerrycans", "jerrican", "jerricans", "jcn", "jc", "dumu", "madumu", "mtungi"], "jerrycan"
    ),
    **dict.fromkeys(["drum", "drums", "drm", "pipa", "mapipa"], "drum"),
    **dict.fromkeys(["tube", "tubes"], "tube"),
    **dict.fromkeys(["sachet", "sachets"], "sachet"),
    **dict.fromkeys(["crate", "crates", "kreti"], "crate"),
    **dict.fromkeys(["tray", "trays", "trei"], "tray"),
    **dict.fromkeys(["bundle", "bundles", "bdl"], "bundle"),
    **dict.fromkeys(["bale", "bales", "bl", "marobota", "robota"], "bale"),
    **dict.fromkeys(["sheet", "sheets", "shts"], "sheet"),
    **dict.fromkeys(["pair", "pairs", "pr", "prs", "jozi"], "pair"),
    **dict.fromkeys(["set", "sets"], "set"),
    **dict.fromkeys(["tablet", "tablets", "tab", "tabs"], "tablet"),
    **dict.fromkeys(["vial", "vials"], "vial"),
    # A lorry (truck, trip) load is a real quantity with no fixed size: it is kept and asked about.
    **dict.fromkeys(["lorry", "lorries", "lori", "truck", "trucks", "tipper", "tippers"], "lorry"),
}

# Spellings too short or too common to read as a unit when they stand alone as a word
# ("no" in "no need", "t" in "can't", "m" in "I'm", "set" in "all set"); they still count when glued to a number
# ("5l", "12m") and as an item master's UoM code.
_GLUED_ONLY = frozenset(
    {"l", "t", "m", "g", "no", "rm", "lit", "pk", "ea", "each", "pr", "mt", "bg", "rl", "jc", "tab", "set", "can",
     "case", "cases", "mm", "dz"}
)  # fmt: skip

# Canonical units counted in whole numbers.
COUNTABLE_UNITS = frozenset({"piece", "box", "pack", "ream", "carton", "bag", "roll", "dozen"} | CONTAINERS)
# Units that name one single thing (a person's "6 bottles" of an item sold by the bottle or by the piece).
_SINGLE_THINGS = frozenset({"piece"} | CONTAINERS)

# Containers that hold smaller packs (a bale of 12 packets, a carton of 24 packets).
_OUTER_CONTAINERS = frozenset({"bale", "carton", "box", "crate", "bundle"})

# Measured units: (dimension, size in the dimension's base unit).
_MEASURES: dict[str, tuple[str, Decimal]] = {
    "g": ("mass", Decimal(1)),
    "kg": ("mass", Decimal(1000)),
    "ton": ("mass", Decimal(1_000_000)),
    "ml": ("volume", Decimal(1)),
    "litre": ("volume", Decimal(1000)),
    "mm": ("length", Decimal("0.1")),
    "cm": ("length", Decimal(1)),
    "m": ("length", Decimal(100)),
    "piece": ("count", Decimal(1)),
    "dozen": ("count", Decimal(12)),
}

_NUM = r"(\d+(?:[.,]\d+)?)"
_UNIT_WORD = r"([a-z]+)"
# "box of 5 reams", "pack of 24", "(box of 1000)"
_PACK_OF_RE = re.compile(rf"\b([a-z]+)\s+of\s+{_NUM}\s*{_UNIT_WORD}?", re.IGNORECASE)
# "- PACK 24", "BOX 5 REAMS", "PACK 10 ROLLS", "CARTON 12 X 1L"
_PACK_N_RE = re.compile(rf"\b([a-z]+)\s+{_NUM}(?:\s*(?:x|×)\s*\d+(?:\.\d+)?\s*[a-z]*)?(?:\s+{_UNIT_WORD})?\b", re.I)
# "24 PACK", "24PCS", "24 PER BOX", "x24" (not a dimension: "10CM X 4.5M", "45CM X 90M")
_N_PACK_RE = re.compile(rf"(?:\bx\s*(\d+)(?![\d.,]|\s*[a-z])|\b{_NUM}\s*(?:per\s+)?([a-z]+)\b)", re.IGNORECASE)
# "50KG", "20 L", "500ML", "12 m"
_SIZE_RE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(kg|kgs|g|gm|litres?|liters?|l|ltrs?|ml|m|metres?|meters?|ton|tonnes?)\b",
    re.IGNORECASE,
)


def normalize_unit(token: str, *, standalone: bool = True) -> str | None:
    """Return the canonical unit for a spelling or UoM code, or ``None`` when it is not a unit.

    Args:
        token: one word as written (``"Boxes"``, ``"pkts"``, ``"ltrs."``, ``"JCN"``).
        standalone: ``True`` when the token is a word of its own in a person's text; very short or ambiguous
            spellings (``"l"``, ``"m"``, ``"no"``) are then refused. Pass ``False`` for a suffix glued to a
            number or for an item master's UoM column.

    Returns:
        A canonical unit (``box``, ``pack``, ``ream``, ``carton``, ``bag``, ``litre``, ``kg``, ``g``, ``m``,
        ``piece``, ``dozen``, ``ton``, ``roll``, ``ml``, ``cm``, a container such as ``bottle`` or
        ``jerrycan``, or ``lorry``) or ``None``.
    """
    key = token.lower().strip().rstrip(".")
    if standalone and key in _GLUED_ONLY:
        return None
    return UNIT_ALIASES.get(key)


def catalog_unit(item: CatalogItem) -> str:
    """The item's catalogue unit in canonical form (``"PKT"`` -> ``pack``); an unknown code stays lower case."""
    return normalize_unit(item.unit, standalone=False) or item.unit.strip().lower()


@dataclass(frozen=True, slots=True)
class PackSize:
    """How much of a smaller unit one catalogue unit holds, read from the item name.

    Attributes:
        count: how many ``unit`` per catalogue unit (``5`` for ``"BOX 5 REAMS"``, ``24`` for ``"PACK 24"``).
        unit: canonical inner unit (``ream``, ``piece``, ``roll``, ``kg``, ``litre``, ``m``...); ``piece`` when
            the name gives a count without saying of what.
        each: the size of one inner piece when the name states it (``(500, "ml")`` for
            ``"WATER BOTTLED 500ML - PACK 24"``), else ``None``.
    """

    count: Decimal
    unit: str
    each: tuple[Decimal, str] | None = None


def _dec(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def _size(name: str) -> tuple[Decimal, str] | None:
    """The first measure stated in a name (``50KG`` -> ``(50, "kg")``), or ``None``."""
    for m in _SIZE_RE.finditer(name):
        unit = normalize_unit(m.group(2), standalone=False)
        if unit is not None and unit in _MEASURES:
            return _dec(m.group(1)), unit
    return None


def _inner(word: str | None) -> str:
    """Inner unit of a pack from the word after its count: a unit, or ``piece`` for any other noun or none."""
    if not word:
        return "piece"
    unit = normalize_unit(word, standalone=False)
    return unit if unit is not None and unit != "dozen" else "piece"


def _counted_pack(name: str, container: str) -> PackSize | None:
    """A count of things per catalogue unit stated in the name, e.g. ``PACK 24``, ``box of 5 reams``, ``24PCS``."""
    for rx in (_PACK_OF_RE, _PACK_N_RE):
        for m in rx.finditer(name):
            head = normalize_unit(m.group(1), standalone=False)
            if head is None or head in _MEASURES and head not in ("piece", "dozen"):
                continue
            word = m.group(3)
            if word and normalize_unit(word, standalone=False) in _MEASURES and word.lower() not in ("pcs", "pieces"):
                continue  # "BOX 5KG": a weight, not a count
            count = _dec(m.group(2))
            if count > 1:
                return PackSize(count, _inner(word))
    for m in _N_PACK_RE.finditer(name):
        if m.group(1):  # "x24"
            return PackSize(_dec(m.group(1)), "piece")
        unit = normalize_unit(m.group(3), standalone=False)
        if unit is None or unit in _MEASURES and unit not in ("piece", "dozen"):
            continue
        count = _dec(m.group(2))
        if unit == "dozen":
            count *= 12
        if count > 1 and (unit == container or unit in ("piece", "dozen") or container in ("pack", "box", "carton")):
            return PackSize(count, "piece" if unit in (container, "dozen") else unit)
    if re.search(r"\bdozen\b", name, re.IGNORECASE):
        return PackSize(Decimal(12), "piece")
    return None


@functools.lru_cache(maxsize=65536)
def _pack_size(name: str, unit: str) -> PackSize | None:
    container = normalize_unit(unit, standalone=False) or unit.lower()
    if container not in COUNTABLE_UNITS:
        return None
    size = _size(name)
    pack = _counted_pack(name, container)
    if pack is not None:
        return PackSize(pack.count, pack.unit, size if pack.unit == "piece" else None)
    if size is not None:
        return PackSize(size[0], size[1])
    return None


def pack_size(item: CatalogItem) -> PackSize | None:
    """Read the pack size stated in a countable item's name.

    Args:
        item: a catalogue item; only items sold in a countable unit (box, pack, piece, bag, bucket...) have one.

    Returns:
        The pack size, e.g. ``PackSize(5, "ream")`` for ``"PAPER A4 80GSM - BOX 5 REAMS"``,
        ``PackSize(24, "piece", (500, "ml"))`` for ``"WATER BOTTLED 500ML - PACK 24"``, ``PackSize(1000,
        "piece")`` for ``"Staples 26/6 (box of 1000)"``, ``PackSize(50, "kg")`` for ``"CEMENT 42.5N 50KG BAG"``;
        ``None`` when the name states none or the item is sold by measure.
    """
    return _pack_size(item.name, item.unit)


@dataclass(frozen=True, slots=True)
class Conversion:
    """Outcome of converting a requested quantity into an item's catalogue unit.

    Attributes:
        quantity: the converted quantity, or the requested one when ``exact`` is ``False``.
        unit: the catalogue unit as the item master writes it, or the requested unit when ``exact`` is ``False``.
        exact: ``True`` when the quantity is in the catalogue unit (no guess was made).
        note: why the conversion was refused (for logs and the LLM, never shown to people); ``None`` when exact.
        fractional: ``True`` when a rule exists but gives a fractional count (``7 reams`` = 1.4 boxes);
            ``False`` when exact or when no rule links the units.
        converted: ``True`` when an exact result is in another unit than the one asked for (show both).
        proposal: for a fractional result, the whole number of catalogue units that covers the request.
    """

    quantity: Decimal
    unit: str
    exact: bool
    note: str | None = None
    fractional: bool = False
    converted: bool = False
    proposal: Decimal | None = None


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


def _via_pack(quantity: Decimal, unit: str, pack: PackSize, target: str) -> Decimal | None:
    """Catalogue units holding ``quantity`` ``unit`` of the pack's contents, or ``None`` when unrelated."""
    if unit == pack.unit or (pack.unit == "piece" and unit in _SINGLE_THINGS and unit != target):
        return quantity / pack.count
    if unit == "pack" and pack.unit == "piece" and pack.each is not None and target in _OUTER_CONTAINERS:
        return quantity / pack.count  # "24 packets of flour" sold in bales of 12 packets: each packet is one piece
    inner = _in_dimension(quantity, unit, pack.unit)
    if inner is not None:
        return inner / pack.count
    if pack.each is not None:
        pieces = _in_dimension(quantity, unit, pack.each[1])
        if pieces is not None:
            return pieces / pack.each[0] / pack.count
    return None


def convert(quantity: Decimal, unit: str | None, item: CatalogItem) -> Conversion:
    """Convert a requested quantity to the item's catalogue unit when that is exact.

    Args:
        quantity: the amount asked for (``Decimal``, > 0).
        unit: canonical unit asked for (see :func:`normalize_unit`), or ``None`` when the person named no
            unit, which is read as the catalogue unit.
        item: the catalogue item; its ``unit`` (any UoM code) is the target and its name may state a pack size.

    Returns:
        A :class:`Conversion`. ``exact`` is ``False`` (request kept as given, with a ``note``) when no rule
        links the units, or when the result would be a fractional count of a countable catalogue unit
        (``7 reams`` of paper sold in boxes of 5; ``proposal`` is then 2 boxes).
    """
    target = catalog_unit(item)
    if unit is not None:
        unit = normalize_unit(unit, standalone=False) or unit.strip().lower()
    if (unit is None or unit == target) and target in COUNTABLE_UNITS and quantity != quantity.to_integral_value():
        # "half a bag": a part of a countable unit cannot be ordered; the whole one that covers it is offered
        return Conversion(tidy(quantity), item.unit, False, f"{tidy(quantity)} {target} is not a whole number",
                          fractional=True, proposal=quantity.to_integral_value(rounding=ROUND_CEILING))  # fmt: skip
    if unit is None or unit == target:
        return Conversion(tidy(quantity), item.unit, True)
    pack = pack_size(item)
    converted = _in_dimension(quantity, unit, target)
    if converted is None and unit == "dozen" and target in _SINGLE_THINGS and (pack is None or pack.count == 1):
        converted = quantity * 12
    if converted is None and pack is not None:
        converted = _via_pack(quantity, "piece" if unit == "dozen" else unit, pack, target)
        if converted is not None and unit == "dozen":
            converted *= 12
    if converted is None and target in _SINGLE_THINGS and unit in _SINGLE_THINGS | {"pack"}:
        # One thing is one catalogue unit: "6 bottles" of bleach sold by the piece, "2 tins" sold by the piece.
        # A "pack" is only that thing when the item is a single small-size piece ("20 packets of milk 500 ml").
        size = _size(item.name)
        if unit != "pack" or (target == "piece" and size is not None and size[1] in ("g", "ml")):
            converted = quantity
    if converted is None:
        return Conversion(tidy(quantity), unit, False, f"no rule converts {unit} to {target}")
    if target in COUNTABLE_UNITS and converted != converted.to_integral_value():
        return Conversion(
            tidy(quantity),
            unit,
            False,
            f"{_fmt(quantity, unit)} = {tidy(converted):f} {target}, not a whole number",
            fractional=True,
            proposal=converted.to_integral_value(rounding=ROUND_CEILING),
        )
    return Conversion(tidy(converted), item.unit, True, converted=True)
