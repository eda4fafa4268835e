"""Vector k-NN and full-text search: nearest first, collection isolation, metadata filters."""

from __future__ import annotations

import itertools
import math

import pytest
from contract_helpers import T0
from index_helpers import DIM, MODEL, chunk, commit, index_of, write

from ingestq.model.document import DocumentRef, SearchQuery
from ingestq.store import Store
from ingestq.store.base import Backend


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


async def _corpus(ix: Backend) -> None:
    await ix.collection_ensure("c", MODEL, DIM, T0)
    await ix.collection_ensure("other", MODEL, DIM, T0)
    await ix.document_register(DocumentRef("c", "red", "/red.md", metadata={"lang": "en", "year": 2020}), T0)
    await ix.document_register(
        DocumentRef("c", "blue", "/blue.md", metadata={"lang": "fr", "year": 2021}), T0
    )
    assert await commit(
        ix,
        write(
            "red",
            chunk("red", 0, "apples are red fruit", [1.0, 0.0, 0.0, 0.0], page=1, heading_path=("Fruit",)),
            chunk("red", 1, "cherries are red too", [0.9, 0.1, 0.0, 0.0], page=2),
        ),
    )
    assert await commit(ix, write("blue", chunk("blue", 0, "the sky is blue", [0.0, 0.0, 1.0, 0.0])))
    assert await commit(
        ix,
        write(
            "elsewhere", chunk("elsewhere", 0, "apples elsewhere", [1.0, 0.0, 0.0, 0.0]), collection="other"
        ),
    )


async def test_vector_knn_returns_the_nearest_first(store: Store) -> None:
    ix = await index_of(store)
    await _corpus(ix)
    hits = await ix.search_vector(SearchQuery("c", k=2, vector=[1.0, 0.0, 0.0, 0.0]))
    assert [h.chunk_id for h in hits] == ["red:0", "red:1"]
    top = hits[0]
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(unit(0.9, 0.1, 0, 0)[0], abs=1e-5)
    assert (top.title, top.source, top.page, top.heading_path, top.text) == (
        "Title red",
        "/red.md",
        1,
        ("Fruit",),
        "apples are red fruit",
    )
    assert top.collection == "c"
    assert top.document_id == "red"
    assert top.metadata == {"lang": "en", "year": 2020}
    nearest_blue = await ix.search_vector(SearchQuery("c", k=1, vector=[0.0, 0.1, 0.9, 0.0]))
    assert [h.chunk_id for h in nearest_blue] == ["blue:0"]


async def test_collections_are_isolated(store: Store) -> None:
    ix = await index_of(store)
    await _corpus(ix)
    hits = await ix.search_vector(SearchQuery("other", k=10, vector=[1.0, 0.0, 0.0, 0.0]))
    assert [h.chunk_id for h in hits] == ["elsewhere:0"]
    assert {h.document_id for h in await ix.search_text(SearchQuery("c", k=10, text="apples"))} == {"red"}
    assert await ix.search_vector(SearchQuery("missing", vector=[1.0, 0.0, 0.0, 0.0])) == []
    assert await ix.search_text(SearchQuery("missing", text="apples")) == []


async def test_empty_collection_finds_nothing(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("empty", MODEL, DIM, T0)
    assert await ix.search_vector(SearchQuery("empty", vector=[1.0, 0.0, 0.0, 0.0])) == []
    assert await ix.search_text(SearchQuery("empty", text="anything")) == []


async def test_metadata_filter_keeps_only_matching_documents(store: Store) -> None:
    ix = await index_of(store)
    await _corpus(ix)
    query = SearchQuery("c", k=3, vector=[1.0, 0.0, 0.0, 0.0], metadata={"lang": "fr"})
    assert [h.chunk_id for h in await ix.search_vector(query)] == ["blue:0"]
    by_year = SearchQuery("c", k=3, vector=[1.0, 0.0, 0.0, 0.0], metadata={"year": 2020, "lang": "en"})
    assert [h.chunk_id for h in await ix.search_vector(by_year)] == ["red:0", "red:1"]
    assert (
        await ix.search_vector(SearchQuery("c", vector=[1.0, 0.0, 0.0, 0.0], metadata={"lang": "de"})) == []
    )
    text = SearchQuery("c", text="red blue", metadata={"lang": "fr"})
    assert [h.chunk_id for h in await ix.search_text(text)] == ["blue:0"]


async def test_metadata_filter_overfetches_past_nearer_rows(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    for i in range(40):
        await ix.document_register(DocumentRef("c", f"n{i:02}", "/n", metadata={"keep": False}), T0)
        assert await commit(ix, write(f"n{i:02}", chunk(f"n{i:02}", 0, "near", unit(1.0, 0.01 * i, 0, 0))))
    await ix.document_register(DocumentRef("c", "far", "/far", metadata={"keep": True}), T0)
    assert await commit(ix, write("far", chunk("far", 0, "far", [0.0, 0.0, 0.0, 1.0])))
    hits = await ix.search_vector(SearchQuery("c", k=1, vector=[1.0, 0.0, 0.0, 0.0], metadata={"keep": True}))
    assert [h.chunk_id for h in hits] == ["far:0"]
    assert hits[0].score == pytest.approx(0.0, abs=1e-5)


async def test_full_text_finds_a_word_best_first(store: Store) -> None:
    ix = await index_of(store)
    await _corpus(ix)
    hits = await ix.search_text(SearchQuery("c", k=5, text="cherries"))
    assert [h.chunk_id for h in hits] == ["red:1"]
    assert hits[0].title == "Title red"
    assert hits[0].page == 2
    ranked = await ix.search_text(SearchQuery("c", k=5, text="red"))
    assert [h.chunk_id for h in ranked][:2] in (["red:0", "red:1"], ["red:1", "red:0"])
    assert all(a.score >= b.score for a, b in itertools.pairwise(ranked))
    # user text is words, never query syntax
    assert await ix.search_text(SearchQuery("c", text='"unbalanced AND (OR* :')) == []
    assert await ix.search_text(SearchQuery("c", text="   ")) == []
