"""General-language tables for reading item names: UoM codes and containers, count nouns, measure units, colours.

English and Swahili spellings; no product words. Used by :mod:`tools.catalog.attributes`.
"""

from __future__ import annotations

from decimal import Decimal

from tools.catalog.text import STOPWORDS

#: Spelling or ERP UoM code -> container / unit noun (what one catalogue unit is).
UOM: dict[str, str] = {
    **dict.fromkeys(["pcs", "pc", "pce", "piece", "pieces", "ea", "each", "unit", "units", "nos", "no", "nr",
                     "item", "items", "kipande", "vipande"], "piece"),
    **dict.fromkeys(["box", "boxes", "bx", "bxs", "boksi"], "box"),
    **dict.fromkeys(["pack", "packs", "pkt", "pkts", "pk", "pck", "packet", "packets", "pakiti"], "pack"),
    **dict.fromkeys(["bag", "bags", "bg", "sack", "sacks", "mfuko", "mifuko", "gunia"], "bag"),
    **dict.fromkeys(["roll", "rolls", "rl", "roli", "reel", "reels"], "roll"),
    **dict.fromkeys(["carton", "cartons", "ctn", "ctns", "case", "cases", "cs", "katoni"], "carton"),
    **dict.fromkeys(["dozen", "dozens", "doz", "dz", "dazeni"], "dozen"),
    **dict.fromkeys(["bottle", "bottles", "btl", "btls", "chupa"], "bottle"),
    **dict.fromkeys(["tin", "tins", "can", "cans", "kopo", "mkebe"], "tin"),
    **dict.fromkeys(["jerrycan", "jerrycans", "jerrican", "jerricans", "jerican", "jcn", "jc", "dumu"], "jerrycan"),
    **dict.fromkeys(["bucket", "buckets", "bkt", "pail", "pails", "ndoo"], "bucket"),
    **dict.fromkeys(["drum", "drums", "drm", "pipa"], "drum"),
    **dict.fromkeys(["pair", "pairs", "pr", "prs", "jozi"], "pair"),
    **dict.fromkeys(["set", "sets", "kit", "kits"], "set"),
    **dict.fromkeys(["ream", "reams", "rm", "rim", "rimu"], "ream"),
    **dict.fromkeys(["tube", "tubes"], "tube"),
    **dict.fromkeys(["sachet", "sachets"], "sachet"),
    **dict.fromkeys(["tray", "trays"], "tray"),
    **dict.fromkeys(["crate", "crates"], "crate"),
    **dict.fromkeys(["bundle", "bundles", "bdl"], "bundle"),
    **dict.fromkeys(["sheet", "sheets", "sht"], "sheet"),
    **dict.fromkeys(["length", "lengths", "lgth"], "length"),
    **dict.fromkeys(["vial", "vials", "ampoule", "ampoules", "amp"], "vial"),
    **dict.fromkeys(["bale", "bales"], "bale"),
    **dict.fromkeys(["coil", "coils"], "coil"),
    **dict.fromkeys(["ltr", "ltrs", "litre", "litres", "liter", "liters", "lt", "l", "lita"], "litre"),
    **dict.fromkeys(["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"], "kg"),
    **dict.fromkeys(["g", "gm", "gms", "gram", "grams"], "g"),
    **dict.fromkeys(["ton", "tons", "tonne", "tonnes", "t", "mt", "tani"], "ton"),
    **dict.fromkeys(["m", "mtr", "mtrs", "metre", "metres", "meter", "meters", "lm"], "metre"),
    **dict.fromkeys(["ml"], "ml"),
}  # fmt: skip

#: Container nouns (what a pack phrase can name), a subset of the values of :data:`UOM`.
CONTAINERS = frozenset(
    {"piece", "box", "pack", "bag", "roll", "carton", "bottle", "tin", "jerrycan", "bucket", "drum", "pair", "set",
     "ream", "tube", "sachet", "tray", "crate", "bundle", "sheet", "length", "vial", "bale", "coil", "dozen"}
)  # fmt: skip
#: Things counted inside a pack ("BOX 5 REAMS", "PACK OF 12 ROLLS", "24 PCS"): general count nouns.
COUNT_NOUNS = {
    **{k: v for k, v in UOM.items() if v in CONTAINERS and v not in {"dozen"}},
    **dict.fromkeys(["tablet", "tablets", "tabs", "capsule", "capsules", "caps", "pad", "pads", "strip", "strips",
                     "leaf", "leaves", "envelope", "envelopes", "cup", "cups"], None),
}  # fmt: skip

#: Measure-unit spelling -> (normalised unit, dimension, factor to the dimension's base unit).
MEASURES: dict[str, tuple[str, str, Decimal]] = {
    **dict.fromkeys(["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"], ("kg", "mass", Decimal(1000))),
    **dict.fromkeys(["g", "gm", "gms", "gr", "grm", "gram", "grams", "gramu"], ("g", "mass", Decimal(1))),
    **dict.fromkeys(["mg"], ("mg", "mass", Decimal("0.001"))),
    **dict.fromkeys(["ton", "tons", "tonne", "tonnes", "t"], ("ton", "mass", Decimal(1_000_000))),
    **dict.fromkeys(["l", "lt", "lts", "ltr", "ltrs", "litre", "litres", "liter", "liters", "lita"],
                    ("l", "volume", Decimal(1000))),
    **dict.fromkeys(["ml", "mls"], ("ml", "volume", Decimal(1))),
    **dict.fromkeys(["cl"], ("cl", "volume", Decimal(10))),
    **dict.fromkeys(["m", "mtr", "mtrs", "metre", "metres", "meter", "meters", "mita"], ("m", "length", Decimal(1000))),
    **dict.fromkeys(["cm", "cms"], ("cm", "length", Decimal(10))),
    **dict.fromkeys(["mm"], ("mm", "length", Decimal(1))),
    **dict.fromkeys(["km"], ("km", "length", Decimal(1_000_000))),
    **dict.fromkeys(["inch", "inches", "in", '"'], ("inch", "length", Decimal("25.4"))),
    **dict.fromkeys(["ft", "feet", "foot"], ("ft", "length", Decimal("304.8"))),
    **dict.fromkeys(["gsm"], ("gsm", "gsm", Decimal(1))),
    **dict.fromkeys(["oz"], ("oz", "oz", Decimal(1))),
    **dict.fromkeys(["w", "watt", "watts"], ("w", "power", Decimal(1))),
    **dict.fromkeys(["kw"], ("kw", "power", Decimal(1000))),
    **dict.fromkeys(["v", "volt", "volts"], ("v", "voltage", Decimal(1))),
    **dict.fromkeys(["kva"], ("kva", "kva", Decimal(1))),
    **dict.fromkeys(["mah"], ("mah", "charge", Decimal(1))),
    **dict.fromkeys(["gb", "gig", "gigs"], ("gb", "data", Decimal(1))),
    **dict.fromkeys(["tb"], ("tb", "data", Decimal(1000))),
    **dict.fromkeys(["page", "pages", "pgs", "pp"], ("page", "page", Decimal(1))),
    **dict.fromkeys(["micron", "microns", "mic"], ("micron", "thickness", Decimal(1))),
}  # fmt: skip
# Spellings that are a measure only when glued to a number ("5l", "3m", "in" is a word otherwise).
GLUED_ONLY = frozenset({"l", "m", "t", "in", "g", "v", "w", "pp", "mic", "cl", "lt", "gr"})

#: Colour word (English, Swahili) -> normalised colour.
COLOURS: dict[str, str] = {
    **dict.fromkeys(["white", "nyeupe", "cheupe", "jeupe"], "white"),
    **dict.fromkeys(["black", "nyeusi", "cheusi", "jeusi"], "black"),
    **dict.fromkeys(["blue", "bluu", "buluu", "navy"], "blue"),
    **dict.fromkeys(["red", "nyekundu", "chekundu", "jekundu"], "red"),
    **dict.fromkeys(["green", "kijani"], "green"),
    **dict.fromkeys(["yellow", "njano", "manjano"], "yellow"),
    **dict.fromkeys(["orange", "machungwa"], "orange"),
    **dict.fromkeys(["grey", "gray", "kijivu"], "grey"),
    **dict.fromkeys(["brown", "kahawia"], "brown"),
    **dict.fromkeys(["pink"], "pink"),
    **dict.fromkeys(["purple", "violet", "zambarau"], "purple"),
    **dict.fromkeys(["silver"], "silver"),
    **dict.fromkeys(["gold", "golden"], "gold"),
    **dict.fromkeys(["clear", "transparent"], "clear"),
    **dict.fromkeys(["beige", "cream"], "beige"),
    **dict.fromkeys(["maroon"], "maroon"),
}  # fmt: skip

SIZE_WORDS = frozenset({"size", "sz", "no", "number", "#"})
# Nouns after a number that make it a grade ("28 GAUGE", "3 PLY", "12 AWG").
GRADE_NOUNS = frozenset({"gauge", "ga", "swg", "awg", "ply", "iso", "sae"})
FILLER = STOPWORDS | {"per", "x", "-", "pkg"}
