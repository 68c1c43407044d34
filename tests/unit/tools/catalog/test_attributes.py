"""Attribute parsing of item-master names and people's descriptions (tools/catalog/attributes.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain import CatalogItem, Money
from tools.catalog.attributes import (
    Measure,
    Pack,
    agreements,
    conflicts,
    item_attributes,
    normalize_uom,
    text_attributes,
)

# name, UoM column, words, measures, colours, grades, pack "count/inner/container" -- office, construction,
# hospitality, healthcare, cleaning, automotive, electrical item masters.
NAMES: list[tuple[str, str, str, str, str, str, str]] = [
    ("PAPER A4 80GSM WHITE - BOX 5 REAMS", "BOX", "paper", "80gsm", "white", "a4", "5/ream/box"),
    ("CEMENT OPC 42.5N 50KG BAG", "BAG", "cement opc", "50kg", "", "42.5n", "1/-/bag"),
    ("WATER BOTTLED 500ML - PACK 24", "PKT", "water bottled", "500ml", "", "", "24/-/pack"),
    ("CUPS PAPER 8OZ - PACK 50", "PKT", "cup paper", "8oz", "", "", "50/-/pack"),
    ("DETERGENT LIQUID 20L JERRYCAN", "PCS", "detergent liquid", "20l", "", "", "1/-/jerrycan"),
    ("PAINT EMULSION WHITE 20L BUCKET", "EA", "paint emulsion", "20l", "white", "", "1/-/bucket"),
    ("HELMET SAFETY YELLOW", "PCS", "helmet safety", "", "yellow", "", "1/-/piece"),
    ("VEST REFLECTOR ORANGE", "PCS", "vest reflector", "", "orange", "", "1/-/piece"),
    ("PEN BALLPOINT BLUE - BOX 50", "BOX", "pen ballpoint", "", "blue", "", "50/-/box"),
    ("OIL ENGINE 15W40 5L", "TIN", "oil engine", "5l", "", "15w40", "1/-/tin"),
    ("TONER HP 26A BLACK CF226A", "PCS", "toner hp", "", "black", "26a cf226a", "1/-/piece"),
    ("GLOVES NITRILE LARGE PACK OF 100", "BOX", "glove nitrile large", "", "", "", "100/-/box"),
    ("SERVIETTES WHITE 100 PACK", "PKT", "serviette", "", "white", "", "100/-/pack"),
    ("SCREWS WOOD M6 24PCS", "PKT", "screw wood", "", "", "m6", "24/piece/pack"),
    ("BATTERY AA ALKALINE x24", "PKT", "battery aa alkaline", "", "", "", "24/-/pack"),
    ("EGGS TRAY (30)", "TRAY", "egg tray", "", "", "", "30/-/tray"),
    ("JUICE MANGO CARTON 12 X 1L", "CTN", "juice mango", "1l", "", "", "12/-/carton"),
    ('TAPE MASKING 2" ROLL 50M', "ROLL", "tape masking", "2inch 50m", "", "", "1/-/roll"),
    ("NAPKINS TABLE - DOZEN", "DOZ", "napkin table", "", "", "", "12/piece/dozen"),
    ("BOOTS SAFETY SIZE 42 BLACK", "PR", "boot safety", "", "black", "42", "1/-/pair"),
    ("OIL ENGINE 15W-40 20L", "DRM", "oil engine", "20l", "", "15w40", "1/-/drum"),
    ("TISSUE TOILET 2PLY - PACK OF 10 ROLLS", "PKT", "tissue toilet", "", "", "2ply", "10/roll/pack"),
    ("STAPLES 26/6 - BOX 1000", "BOX", "staple", "", "", "26/6", "1000/-/box"),
    ("STEEL BAR Y12 DEFORMED 12M", "LGTH", "steel bar deformed", "12m", "", "y12", "1/-/length"),
    ("NAILS WIRE 3 INCH - 1KG", "KG", "nail wire", "3inch 1kg", "", "", "1/-/kg"),
    ("SAND RIVER WASHED", "TON", "sand river washed", "", "", "", "1/-/ton"),
    ("DIESEL", "LTR", "diesel", "", "", "", "1/-/litre"),
    ("SUGAR WHITE 2KG", "PKT", "sugar", "2kg", "white", "", "1/-/pack"),
    ("MILK LONG LIFE 500ML - CARTON 12 X 500ML", "CTN", "milk long life", "500ml", "", "", "12/-/carton"),
    ("SYRINGE 5ML LUER LOCK - BOX 100", "BOX", "syringe luer lock", "5ml", "", "", "100/-/box"),
    ("MASK SURGICAL 3PLY - BOX 50", "BOX", "mask surgical", "", "", "3ply", "50/-/box"),
    ("GAUZE SWABS STERILE 10CM X 10CM - PACK 100", "PKT", "gauze swab sterile", "10cm", "", "", "100/-/pack"),
    ("SANITIZER HAND 500ML", "BTL", "sanitizer hand", "500ml", "", "", "1/-/bottle"),
    ("COFFEE INSTANT 200G TIN", "TIN", "coffee instant", "200g", "", "", "1/-/tin"),
    ("BIN LINERS BLACK 90L - ROLL 20", "ROLL", "bin liner", "90l", "black", "", "20/-/roll"),
    ("FLASH DRIVE USB 64GB", "EA", "flash drive usb", "64gb", "", "", "1/-/piece"),
    ("BULB LED 9W E27 WARM WHITE", "PCS", "bulb led warm", "9w", "white", "e27", "1/-/piece"),
    ("CABLE ELECTRIC 2.5MM RED - ROLL 100M", "ROLL", "cable electric", "2.5mm 100m", "red", "", "1/-/roll"),
    ("PIPE PVC 4 INCH 6M LENGTH", "LGTH", "pipe pvc", "4inch 6m", "", "", "1/-/length"),
    ("BOLT HEX M12 X 50MM", "PCS", "bolt hex", "50mm", "", "m12", "1/-/piece"),
    ("PAINT GLOSS BLACK 4L TIN", "TIN", "paint gloss", "4l", "black", "", "1/-/tin"),
    ("FUEL FILTER CAT 1R-0751", "EA", "fuel filter cat", "", "", "1r0751", "1/-/piece"),
    ("PAPER TOWEL INTERFOLD - CARTON 20 PACKS", "CTN", "paper towel interfold", "", "", "", "20/pack/carton"),
    ("PARACETAMOL 500MG TABLETS - BOX 100", "BOX", "paracetamol tablet", "500mg", "", "", "100/-/box"),
    ("GLUCOSE 5% 500ML - BOTTLE", "BTL", "glucose", "500ml", "", "", "1/-/bottle"),
    ("BANDAGE CREPE 10CM", "PCS", "bandage crepe", "10cm", "", "", "1/-/piece"),
    ("RICE BASMATI 25KG BAG", "BAG", "rice basmati", "25kg", "", "", "1/-/bag"),
    ("COOKING OIL 20L JERRYCAN", "JCN", "cooking oil", "20l", "", "", "1/-/jerrycan"),
    ("TEA BAGS - PACK OF 100", "PKT", "tea bag", "", "", "", "100/-/pack"),
    ("SOAP BAR 800G", "PCS", "soap bar", "800g", "", "", "1/-/piece"),
    ("TILES CERAMIC 600X600 GREY - BOX 4", "BOX", "tile ceramic", "", "grey", "600x600", "4/-/box"),
    ("ROOFING SHEET 28 GAUGE 3M", "PCS", "roofing sheet", "3m", "", "28gauge", "1/-/piece"),
    ("WHEELBARROW HEAVY DUTY", "PCS", "wheelbarrow heavy duty", "", "", "", "1/-/piece"),
    ("BROOM SOFT", "PCS", "broom soft", "", "", "", "1/-/piece"),
    ("DUSTER MICROFIBRE BLUE - PACK 5", "PKT", "duster microfibre", "", "blue", "", "5/-/pack"),
    ("FILE BOX ARCH LEVER A4", "PCS", "file box arch lever", "", "", "a4", "1/-/piece"),
    ("NOTEBOOK A5 RULED 96 PAGES", "PCS", "notebook ruled", "96page", "", "a5", "1/-/piece"),
    ("ENVELOPE BROWN A4 - PACK OF 50", "PKT", "envelope", "", "brown", "a4", "50/-/pack"),
    ("SHEETS BED WHITE SINGLE", "PCS", "sheet bed single", "", "white", "", "1/-/piece"),
    ("TOWEL BATH WHITE 500GSM", "PCS", "towel bath", "500gsm", "white", "", "1/-/piece"),
    ("CHLORINE GRANULES 45KG DRUM", "DRM", "chlorine granule", "45kg", "", "", "1/-/drum"),
    ("WATER DISPENSER 18.9L REFILL", "BTL", "water dispenser refill", "18.9l", "", "", "1/-/bottle"),
    ("SPARK PLUG NGK BPR6ES", "PCS", "spark plug ngk", "", "", "bpr6es", "1/-/piece"),
]


def _item(name: str, unit: str) -> CatalogItem:
    return CatalogItem("X-1", name, unit, Money(Decimal("1.00"), "USD"), "SUP")


def test_table_is_large_enough() -> None:
    assert len(NAMES) >= 60


@pytest.mark.parametrize(("name", "unit", "words", "measures", "colours", "grades", "pack"), NAMES)
def test_item_names(name: str, unit: str, words: str, measures: str, colours: str, grades: str, pack: str) -> None:
    a = item_attributes(_item(name, unit))
    assert " ".join(a.words) == words
    assert " ".join(f"{m.value}{m.unit}" for m in a.measures) == measures
    assert " ".join(sorted(a.colours)) == colours
    assert " ".join(sorted(a.grades)) == grades
    assert a.pack is not None
    assert f"{a.pack.count}/{a.pack.inner or '-'}/{a.pack.container}" == pack


@pytest.mark.parametrize(
    ("name", "count", "inner", "container"),
    [
        ("WATER - PACK 24", 24, None, "pack"),
        ("WATER PACK OF 24", 24, None, "pack"),
        ("WATER 24 PACK", 24, None, "pack"),
        ("BOLTS 24PCS", 24, "piece", "piece"),
        ("GLOVES BOX 100", 100, None, "box"),
        ("PAPER BOX 5 REAMS", 5, "ream", "box"),
        ("CEMENT 50KG BAG", 1, None, "bag"),
        ("DETERGENT 20L JERRYCAN", 1, None, "jerrycan"),
        ("TAPE ROLL 50M", 1, None, "roll"),
        ("JUICE CARTON 12 X 1L", 12, None, "carton"),
        ("BATTERIES x24", 24, None, "piece"),
        ("EGGS (24)", 24, None, "piece"),
        ("NAPKINS DOZEN", 12, "piece", "piece"),
        ("NAPKINS 2 DOZEN", 24, "piece", "piece"),
        ("JUICE 12x500ML", 12, None, "piece"),
    ],
)
def test_pack_grammar(name: str, count: int, inner: str | None, container: str) -> None:
    pack = item_attributes(_item(name, "PCS")).pack
    assert pack == Pack(Decimal(count), inner, container)


@pytest.mark.parametrize(
    ("code", "noun"),
    [("PCS", "piece"), ("EA", "piece"), ("BOX", "box"), ("PKT", "pack"), ("BAG", "bag"), ("ROLL", "roll"),
     ("LTR", "litre"), ("KG", "kg"), ("CTN", "carton"), ("DOZ", "dozen"), ("BTL", "bottle"), ("TIN", "tin"),
     ("JCN", "jerrycan"), ("BKT", "bucket"), ("DRM", "drum"), ("PR", "pair"), ("SET", "set"), ("Nos.", "piece"),
     ("Sachets", "sachet")],
)  # fmt: skip
def test_uom_codes(code: str, noun: str) -> None:
    assert normalize_uom(code) == noun


def test_text_attributes() -> None:
    a = text_attributes("cement 42.5")
    assert a.words == ("cement",) and a.grades == frozenset({"42.5"}) and a.pack is None
    b = text_attributes("hard hats (yellow)")
    assert b.words == ("hard", "hat") and b.colours == frozenset({"yellow"})
    c = text_attributes("maji ya kunywa nyeupe 500 ml")
    assert c.colours == frozenset({"white"}) and c.measures == (Measure(Decimal(500), "ml"),)
    assert text_attributes("15w-40 engine oil").grades == frozenset({"15w40"})
    assert text_attributes("pack of 24 water").pack == Pack(Decimal(24), None, "pack")


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("cement 42.5", "CEMENT OPC 42.5N 50KG BAG", []),
        ("cement 32.5", "CEMENT OPC 42.5N 50KG BAG", ["grade"]),
        ("yellow helmet", "HELMET SAFETY YELLOW", []),
        ("white helmet", "HELMET SAFETY YELLOW", ["colour"]),
        ("helmet", "HELMET SAFETY YELLOW", []),  # a missing attribute never contradicts
        ("water 0.5l", "WATER BOTTLED 500ML - PACK 24", []),  # same size in another unit
        ("water 1.5l", "WATER BOTTLED 500ML - PACK 24", ["measure"]),
        ("water 500ml", "WATER DISPENSER REFILL", []),
        ("paper 80gsm", "PAPER A4 80GSM WHITE - BOX 5 REAMS", []),
        ("a3 paper", "PAPER A4 80GSM WHITE - BOX 5 REAMS", ["grade"]),
        ("hp 26a", "TONER HP 26A BLACK CF226A", []),
        ("cf226a", "TONER HP 26A BLACK CF226A", []),
        ("hp 26x", "TONER HP 26A BLACK CF226A", ["grade"]),
        ("15w40 oil 5 litres", "OIL ENGINE 10W30 5L", ["grade"]),
        ("red pen 20l", "PEN BALLPOINT BLUE - BOX 50", ["colour"]),
        ("boots size 43", "BOOTS SAFETY SIZE 42 BLACK", ["grade"]),
        ("nyekundu 5kg", "PAINT GLOSS BLACK 4L TIN", ["colour"]),
    ],
)
def test_conflicts(text: str, name: str, expected: list[str]) -> None:
    assert conflicts(text_attributes(text), item_attributes(_item(name, "PCS"))) == expected


def test_agreements() -> None:
    item = item_attributes(_item("CEMENT OPC 42.5N 50KG BAG", "BAG"))
    assert agreements(text_attributes("cement 42.5 50kg"), item) == ["measure", "grade"]
    assert agreements(text_attributes("cement"), item) == []
    helmet = item_attributes(_item("HELMET SAFETY YELLOW", "PCS"))
    assert agreements(text_attributes("hard hats (yellow)"), helmet) == ["colour"]


def test_item_attributes_cached() -> None:
    item = _item("CUPS PAPER 8OZ - PACK 50", "PKT")
    assert item_attributes(item) is item_attributes(_item("CUPS PAPER 8OZ - PACK 50", "PKT"))
