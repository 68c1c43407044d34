"""Tests for the catalogue index: SKUs, codes, aliases, typos, ambiguity and the optional semantic hook."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.domain import CatalogItem
from core.repo import parse_catalog_csv
from tools.catalog import CatalogIndex, is_code, singular, tokens

CATALOG_CSV = Path(__file__).resolve().parents[4] / "examples" / "catalog.csv"


def load_catalog(path: Path = CATALOG_CSV) -> list[CatalogItem]:
    return parse_catalog_csv(path.read_text(encoding="utf-8"))


ITEMS = load_catalog()
INDEX = CatalogIndex(ITEMS)
TONERS = ["TON-CF226A", "TON-CF226X", "TON-CE285A"]


def test_catalogue_loaded() -> None:
    assert len(ITEMS) == 41


@pytest.mark.parametrize(
    ("query", "sku"),
    [
        # exact SKU, any case
        ("TON-CF226A", "TON-CF226A"),
        ("pap-a3-80", "PAP-A3-80"),
        # manufacturer code in the name's brackets
        ("CF226A", "TON-CF226A"),
        ("cf226x", "TON-CF226X"),
        ("CE285A", "TON-CE285A"),
        # names and aliases
        ("HP 26A", "TON-CF226A"),
        ("hp 26x toner", "TON-CF226X"),
        ("26x", "TON-CF226X"),
        ("a4 paper", "PAP-A4-80"),
        ("A3 copy paper", "PAP-A3-80"),
        ("stapler", "STP-STD"),
        ("staples", "STP-PIN"),
        ("blue pens", "PEN-BLU"),
        ("black biro", "PEN-BLK"),
        ("Nitrile gloves", "CLN-GLOVE"),
        ("toilet rolls", "CLN-TISSUE"),
        ("bamburi cement", "CEM-425"),
        ("steel bars 12mm", "RBR-Y12"),
        ("y10", "RBR-Y10"),
        ("usb mouse", "MOU-USB"),
        ("mice", "MOU-USB"),
        # other languages
        ("simenti", "CEM-425"),
        ("sukari", "SUG-2KG"),
        ("karatasi a4", "PAP-A4-80"),
        ("mchanga", "SND-RIV"),
        ("dizeli", "DSL-L"),
        # plurals, punctuation, joined words
        ("Helmets!", "HLM-YEL"),
        ("box-files", "FLD-BOX"),
        ("hardhat", "HLM-YEL"),
        ("flashdisk", "USB-32"),
        ("batteries aa", "BAT-AA"),
        # typos
        ("stapplers", "STP-STD"),
        ("a4 papr", "PAP-A4-80"),
        ("tonner hp 26a", "TON-CF226A"),
        ("glovs", "CLN-GLOVE"),
        ("helmt", "HLM-YEL"),
        ("cemnt", "CEM-425"),
        # a three-letter word may be a four-letter word missing its last letter
        ("blu pens", "PEN-BLU"),
        ("blu biro", "PEN-BLU"),
        ("fresh mil", "MLK-500"),
        ("milk", "MLK-500"),
    ],
)
def test_confident_match(query: str, sku: str) -> None:
    result = INDEX.match(query)
    assert result.status == "match", result
    assert result.item is not None and result.item.sku == sku


@pytest.mark.parametrize(
    ("query", "skus"),
    [
        ("toner HP 26", ["TON-CF226A", "TON-CF226X"]),
        ("hp toner", TONERS),
        ("toner", TONERS),
        ("tonner", TONERS),
        ("black toner", TONERS),
        ("paper", ["PAP-A4-80", "PAP-A3-80", "CLN-TISSUE"]),
        ("pens", ["PEN-BLU", "PEN-BLK"]),
        ("rebar", ["RBR-Y12", "RBR-Y10"]),
    ],
)
def test_ambiguous(query: str, skus: list[str]) -> None:
    result = INDEX.match(query)
    assert result.status == "ambiguous"
    assert result.item is None
    assert result.skus == skus


@pytest.mark.parametrize(
    "query",
    ["printer ink", "chair", "office chairs", "", "the", "usb 64gb", "hp 12a", "map", "mol", "blx"],
)
def test_no_match(query: str) -> None:
    assert INDEX.match(query).status == "none"


@pytest.mark.parametrize(
    ("query", "excluded"),
    [
        ("HP 26A", "TON-CF226X"),
        ("26a toner", "TON-CF226X"),
        ("hp 26x", "TON-CF226A"),
        ("a4 paper", "PAP-A3-80"),
        ("a3 paper", "PAP-A4-80"),
        ("y12", "RBR-Y10"),
        ("cf226a", "TON-CE285A"),
    ],
)
def test_codes_are_hard_constraints(query: str, excluded: str) -> None:
    assert excluded not in [item.sku for item, _ in INDEX.search(query, limit=41)]


def test_search_ranks_and_limits() -> None:
    results = INDEX.search("hp toner", limit=2)
    assert len(results) == 2
    assert [item.sku for item, _ in results] == ["TON-CF226A", "TON-CF226X"]
    assert all(0 < score <= 100 for _, score in results)
    assert results[0][1] >= results[1][1]


def test_exact_sku_scores_100_alone() -> None:
    assert [(item.sku, score) for item, score in INDEX.search("STP-PIN")] == [("STP-PIN", 100.0)]


def test_exact_alias_outranks_alias_containing_it() -> None:
    (first, s1), (second, s2) = INDEX.search("stapler", limit=2)
    assert (first.sku, second.sku) == ("STP-STD", "STP-PIN")
    assert s1 - s2 >= 10


def test_get_and_duplicates() -> None:
    item = INDEX.get("ton-cf226a")
    assert item is not None and item.sku == "TON-CF226A"
    assert INDEX.get("nope") is None
    with pytest.raises(ValueError, match="duplicate SKU"):
        CatalogIndex([ITEMS[0], ITEMS[0]])


def test_known_codes() -> None:
    assert INDEX.is_known_code("26x")
    assert INDEX.is_known_code("26/6")
    assert not INDEX.is_known_code("2x")
    assert not INDEX.is_known_code("paper")


@pytest.mark.parametrize(
    ("word", "singular_form"),
    [("boxes", "box"), ("batteries", "battery"), ("gloves", "glove"), ("glass", "glass"), ("pens", "pen"),
     ("mice", "mouse"), ("26a", "26a"), ("gas", "gas"), ("brushes", "brush")],
)  # fmt: skip
def test_singular(word: str, singular_form: str) -> None:
    assert singular(word) == singular_form


def test_tokens() -> None:
    assert tokens("Cement 42.5N, 50kg bag") == ["cement", "42.5n", "50kg", "bag"]
    assert tokens("Staples 26/6 (box of 1000)") == ["staple", "26/6", "box", "1000"]
    assert tokens("HP 26X high-yield") == ["hp", "26x", "high", "yield"]


def test_is_code() -> None:
    assert is_code("26a") and is_code("a4") and is_code("26/6")
    assert not is_code("26") and not is_code("paper")


# -- semantic hook ------------------------------------------------------------------------------------------

# A tiny fake embedding: each concept is one dimension; a text's vector counts the concept words it contains.
CONCEPTS = {
    "write": 0, "writing": 0, "pen": 0, "pens": 0, "biro": 0, "ballpoint": 0,
    "clean": 1, "cleaning": 1, "bleach": 1, "detergent": 1, "soap": 1, "mop": 1,
    "drink": 2, "drinking": 2, "water": 2, "thirsty": 2, "milk": 2, "tea": 2, "coffee": 2,
    "head": 3, "helmet": 3, "protect": 3, "protection": 3,
}  # fmt: skip


def fake_embed(texts: list[str]) -> list[list[float]]:
    calls.append(len(texts))
    vectors = []
    for text in texts:
        vec = [0.0] * 4
        for word in tokens(text):
            if word in CONCEPTS:
                vec[CONCEPTS[word]] += 1.0
        vectors.append(vec)
    return vectors


calls: list[int] = []


def test_semantic_finds_what_lexical_cannot() -> None:
    assert INDEX.match("something to write with").status == "none"
    semantic = CatalogIndex(ITEMS, embed=fake_embed)
    result = semantic.match("something to write with")
    assert result.status == "ambiguous"
    assert result.skus == ["PEN-BLU", "PEN-BLK"]


def test_semantic_keeps_lexical_matches() -> None:
    semantic = CatalogIndex(ITEMS, embed=fake_embed)
    for query, sku in [("HP 26A", "TON-CF226A"), ("blue pens", "PEN-BLU"), ("simenti", "CEM-425")]:
        result = semantic.match(query)
        assert result.item is not None and result.item.sku == sku


def test_semantic_does_not_overrule_codes() -> None:
    semantic = CatalogIndex(ITEMS, embed=lambda texts: [[1.0, 0.0] for _ in texts])  # everything alike
    assert "TON-CF226X" not in [item.sku for item, _ in semantic.search("hp 26a", limit=41)]


def test_semantic_embeds_items_once_and_caches_queries() -> None:
    calls.clear()
    semantic = CatalogIndex(ITEMS, embed=fake_embed)
    assert calls == [41]
    semantic.search("drinking water")
    semantic.search("drinking water")
    assert calls == [41, 1]


def test_semantic_score_blend() -> None:
    semantic = CatalogIndex(ITEMS, embed=fake_embed, semantic_weight=0.4)
    # no lexical overlap; the four drinks have cosine 1.0 -> 0.6 * 0 + 0.4 * 100
    results = semantic.search("thirsty", limit=41)
    assert [item.sku for item, _ in results] == ["WTR-18L", "TEA-500", "MLK-500", "COF-250"]
    assert all(math.isclose(score, 40.0) for _, score in results)
    # a lexical hit is never lowered by a weak cosine
    assert semantic.search("simenti")[0] == (INDEX.get("CEM-425"), 100.0)


def test_semantic_weight_validated() -> None:
    with pytest.raises(ValueError):
        CatalogIndex(ITEMS, embed=fake_embed, semantic_weight=1.5)
