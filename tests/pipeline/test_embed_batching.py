"""Pure batch planning (tables) and the cross-document batcher with the deterministic embedder."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ingestq.pipeline.embed.base import Vector, plan_batches, should_flush, take_count
from ingestq.pipeline.embed.batcher import EmbeddingBatcher, pick_by_length
from ingestq.pipeline.embed.fake import FakeEmbedder


@pytest.mark.parametrize(
    ("tokens", "max_items", "max_tokens", "expected"),
    [
        ([], 4, None, []),
        ([1, 1, 1], 4, None, [(0, 3)]),
        ([1] * 9, 4, None, [(0, 4), (4, 8), (8, 9)]),
        ([1] * 8, 4, None, [(0, 4), (4, 8)]),
        ([5, 5, 5, 5], 10, 10, [(0, 2), (2, 4)]),
        ([5, 6, 5], 10, 10, [(0, 1), (1, 2), (2, 3)]),
        ([50, 1, 1], 10, 10, [(0, 1), (1, 3)]),  # an item over the cap still gets a batch of its own
        ([1, 50, 1], 10, 10, [(0, 1), (1, 2), (2, 3)]),
        ([3, 3, 3, 3], 2, 100, [(0, 2), (2, 4)]),
        ([3, 3, 3, 3], 1, None, [(0, 1), (1, 2), (2, 3), (3, 4)]),
    ],
)
def test_plan_batches(
    tokens: list[int], max_items: int, max_tokens: int | None, expected: list[tuple[int, int]]
) -> None:
    batches = plan_batches(tokens, max_items, max_tokens)
    assert [(r.start, r.stop) for r in batches] == expected
    assert [i for r in batches for i in r] == list(range(len(tokens)))


@pytest.mark.parametrize(("max_items", "max_tokens"), [(0, None), (1, 0)])
def test_plan_batches_refuses_nonsense(max_items: int, max_tokens: int | None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_batches([1], max_items, max_tokens)


@pytest.mark.parametrize(
    ("tokens", "max_items", "max_tokens", "expected"),
    [([], 4, None, 0), ([1] * 10, 4, None, 4), ([1, 2], 4, None, 2), ([8, 8, 8], 4, 20, 2)],
)
def test_take_count(tokens: list[int], max_items: int, max_tokens: int | None, expected: int) -> None:
    assert take_count(tokens, max_items, max_tokens) == expected


@pytest.mark.parametrize(
    ("pending", "waited", "expected"),
    [(0, 1.0, False), (3, 0.0, False), (3, 0.05, True), (32, 0.0, True), (40, 0.0, True)],
)
def test_should_flush(pending: int, waited: float, expected: bool) -> None:
    assert should_flush(pending, 32, waited, 0.05) is expected


async def test_small_documents_share_model_calls() -> None:
    embedder = FakeEmbedder()
    docs = [[f"doc {d} chunk {c}" for c in range(3)] for d in range(20)]
    async with EmbeddingBatcher(embedder.embed, batch_size=16, max_wait=0.05) as batcher:
        results = await asyncio.gather(*(batcher.embed(texts) for texts in docs))
    assert results == [[embedder.vector(t) for t in texts] for texts in docs]
    assert sum(embedder.calls) == 60
    assert max(embedder.calls) == 16
    assert len(embedder.calls) <= 5  # 60 texts, 16 per call: 4 full calls and a remainder


async def test_a_lone_document_is_not_held_back_for_long() -> None:
    embedder = FakeEmbedder()
    async with EmbeddingBatcher(embedder.embed, batch_size=64, max_wait=0.01) as batcher:
        vectors = await asyncio.wait_for(batcher.embed(["only one"]), timeout=5)
    assert vectors == [embedder.vector("only one")]
    assert embedder.calls == [1]


async def test_token_cap_splits_batches() -> None:
    embedder = FakeEmbedder()
    async with EmbeddingBatcher(
        embedder.embed,
        batch_size=100,
        max_wait=0.01,
        max_batch_tokens=30,
        count_tokens=embedder.count_tokens,
    ) as batcher:
        await batcher.embed([" ".join(["w"] * 8)] * 10)  # 10 tokens each
    assert embedder.calls == [3, 3, 3, 1]


async def test_a_failing_call_fails_only_its_own_callers() -> None:
    async def flaky(texts: Sequence[str]) -> list[Vector]:
        if any("bad" in t for t in texts):
            raise RuntimeError("model exploded")
        return [[1.0] for _ in texts]

    async with EmbeddingBatcher(flaky, batch_size=2, max_wait=0.01) as batcher:
        bad = asyncio.create_task(batcher.embed(["bad", "bad too"]))
        await asyncio.sleep(0)
        good = asyncio.create_task(batcher.embed(["fine", "also fine"]))
        with pytest.raises(RuntimeError, match="model exploded"):
            await bad
        assert await good == [[1.0], [1.0]]


async def test_cancelled_caller_does_not_block_others() -> None:
    release = asyncio.Event()
    seen: list[list[str]] = []

    async def slow(texts: Sequence[str]) -> list[Vector]:
        seen.append(list(texts))
        await release.wait()
        return [[0.0] for _ in texts]

    async with EmbeddingBatcher(slow, batch_size=1, max_wait=0.0) as batcher:
        first = asyncio.create_task(batcher.embed(["first"]))
        second = asyncio.create_task(batcher.embed(["second"]))
        third = asyncio.create_task(batcher.embed(["third"]))
        await asyncio.sleep(0.01)
        second.cancel()
        release.set()
        assert await first == [[0.0]]
        assert await third == [[0.0]]
    assert ["second"] not in seen


async def test_embed_before_start_is_an_error() -> None:
    batcher = EmbeddingBatcher(FakeEmbedder().embed)
    with pytest.raises(RuntimeError, match="not running"):
        await batcher.embed(["x"])


@pytest.mark.parametrize(
    ("tokens", "batch_size", "expected"),
    [
        ([], 2, []),
        ([5, 9], 4, [0, 1]),  # fewer than a batch: all of them
        ([100, 10, 11, 99], 2, [0, 3]),  # the oldest (100) goes with its nearest length (99)
        ([10, 100, 11, 99], 2, [0, 2]),
        ([50, 10, 49, 90, 51], 3, [0, 2, 4]),  # 49, 50, 51: no padding wasted
        ([7, 7, 7, 7, 7], 2, [0, 1]),  # equal lengths: oldest first
        ([256, 20, 30, 40], 1, [0]),
    ],
)
def test_pick_by_length(tokens: list[int], batch_size: int, expected: list[int]) -> None:
    assert pick_by_length(tokens, batch_size) == expected


async def test_grouped_batches_hold_texts_of_similar_length() -> None:
    seen: list[list[str]] = []
    gate = asyncio.Event()

    async def record(texts: Sequence[str]) -> list[Vector]:
        seen.append(list(texts))
        await gate.wait()  # the first call keeps the model busy while every document queues its texts
        return [[float(len(t))] for t in texts]

    short = [f"s{i}" for i in range(4)]
    long = [f"long text {i} " * 20 for i in range(4)]
    docs = [[short[i], long[i]] for i in range(4)]  # every document mixes a short and a long text
    async with EmbeddingBatcher(record, batch_size=4, max_wait=0.0, group_by_length=True) as batcher:
        first = asyncio.create_task(batcher.embed(["busy"]))
        await asyncio.sleep(0.01)
        rest = asyncio.gather(*(batcher.embed(texts) for texts in docs))
        await asyncio.sleep(0.01)
        gate.set()
        await first
        results = await rest
    assert results == [[[float(len(t))] for t in texts] for texts in docs]  # each caller, its own order
    assert [sorted(call) for call in seen[1:]] == [sorted(short), sorted(long)]


async def test_known_token_counts_are_used_and_checked() -> None:
    seen: list[list[str]] = []

    async def record(texts: Sequence[str]) -> list[Vector]:
        seen.append(list(texts))
        return [[0.0] for _ in texts]

    async with EmbeddingBatcher(record, batch_size=2, max_wait=0.05, group_by_length=True) as batcher:
        # lengths say "a" and "c" belong together, whatever their characters say
        await batcher.embed(["a", "bbbbbbbbbbbbbbbbbbbb", "c"], [200, 5, 190])
        with pytest.raises(ValueError, match="2 token counts for 1 texts"):
            await batcher.embed(["x"], [1, 2])
    assert seen == [["a", "c"], ["bbbbbbbbbbbbbbbbbbbb"]]
