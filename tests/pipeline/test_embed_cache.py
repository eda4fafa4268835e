"""The embedding cache: key = model + exact text; re-embedding only what changed."""

from __future__ import annotations

from ingestq.pipeline.embed.cache import MemoryEmbeddingCache, cache_key, embed_with_cache
from ingestq.pipeline.embed.fake import FakeEmbedder


def test_cache_key_separates_model_and_text() -> None:
    assert cache_key("m", "text") == cache_key("m", "text")
    assert cache_key("m1", "text") != cache_key("m2", "text")
    assert cache_key("ab", "c") != cache_key("a", "bc")


async def test_second_pass_embeds_only_changed_texts() -> None:
    embedder = FakeEmbedder()
    cache = MemoryEmbeddingCache()
    texts = [f"paragraph {i}" for i in range(10)]
    first = await embed_with_cache(texts, embedder.model_id, embedder.embed, cache)
    assert (first.embedded, first.reused) == (10, 0)

    texts[3] = "paragraph 3, edited"
    second = await embed_with_cache(texts, embedder.model_id, embedder.embed, cache)
    assert (second.embedded, second.reused) == (1, 9)
    assert second.vectors == [embedder.vector(t) for t in texts]
    assert embedder.calls == [10, 1]


async def test_duplicates_in_one_call_are_embedded_once() -> None:
    embedder = FakeEmbedder()
    result = await embed_with_cache(["same", "same", "other"], "m", embedder.embed, MemoryEmbeddingCache())
    assert (result.embedded, result.reused) == (2, 1)
    assert result.vectors[0] == result.vectors[1]


async def test_another_model_misses() -> None:
    embedder = FakeEmbedder()
    cache = MemoryEmbeddingCache()
    await embed_with_cache(["x"], "model-a", embedder.embed, cache)
    result = await embed_with_cache(["x"], "model-b", embedder.embed, cache)
    assert result.embedded == 1


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryEmbeddingCache(max_entries=2)
    await cache.put_many({"a": [1.0], "b": [2.0]})
    await cache.get_many(["a"])  # a is now the most recent
    await cache.put_many({"c": [3.0]})
    assert set(await cache.get_many(["a", "b", "c"])) == {"a", "c"}
    assert len(cache) == 2
