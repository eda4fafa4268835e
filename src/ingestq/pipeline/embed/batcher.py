"""Cross-document batching: many small documents share one model call.

Each document's job awaits `batcher.embed(texts)`; the batcher pools the texts of every job in flight
and sends them to the embedder in batches of up to `batch_size` (and `max_batch_tokens`). A batch goes
out as soon as it is full, or when its oldest text has waited `max_wait` seconds, so a lone document
is not held back for long. While the model is busy with one batch the next one fills up, so under load
batches are full without any waiting. When to flush and how much to take are the pure functions
`should_flush` and `take_count` in `base`.

With `group_by_length` (models that pad every text of a call to the longest one, like the local
sentence-transformers model), a batch is not simply the oldest texts: it is the run of texts of similar
token length, among the oldest `POOL` pending ones, that wastes least padding while still holding the
oldest text (so nothing waits more than a few calls). On the markdown corpus, oldest-first batches of
32 cost the model twice the tokens of length-sorted ones (every batch padded to ~256 tokens for a mean
of 121); picking by length from the texts of 64 documents in flight brings that to about 1.15x.
Services that cap a call's tokens (`max_batch_tokens`) bill tokens, not padding: they keep oldest-first
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ingestq.pipeline.embed.base import Vector, should_flush, take_count

EmbedFn = Callable[[Sequence[str]], Awaitable[list[Vector]]]
POOL = 1024
"""Pending texts (oldest first) a length-grouped batch is chosen from: enough for 32 batches of 32, few
enough that sorting them for every call costs nothing next to the call."""


def pick_by_length(tokens: Sequence[int], batch_size: int) -> list[int]:
    """Indices (into `tokens`, oldest first) of the next batch of a padding model: `batch_size` texts
    consecutive in length order that include the oldest (index 0) and waste the least padding
    (batch_size x longest - sum). Ties go to the shorter texts. All of them when no more are pending."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    n = len(tokens)
    if n <= batch_size:
        return list(range(n))
    order = sorted(range(n), key=lambda i: (tokens[i], i))
    at = order.index(0)
    prefix = [0]
    for i in order:
        prefix.append(prefix[-1] + tokens[i])
    best_start, best_waste = 0, -1
    for start in range(max(0, at - batch_size + 1), min(at, n - batch_size) + 1):
        end = start + batch_size
        waste = batch_size * tokens[order[end - 1]] - (prefix[end] - prefix[start])
        if best_waste < 0 or waste < best_waste:
            best_start, best_waste = start, waste
    return sorted(order[best_start : best_start + batch_size])


@dataclass(slots=True)
class _Pending:
    text: str
    tokens: int
    future: asyncio.Future[Vector]
    since: float = field(default_factory=time.monotonic)


def _estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1  # only orders texts by length when no tokenizer count is at hand


class EmbeddingBatcher:
    def __init__(
        self,
        embed: EmbedFn,
        batch_size: int = 32,
        max_wait: float = 0.01,
        max_batch_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        concurrency: int = 1,
        group_by_length: bool = False,
    ) -> None:
        if batch_size < 1 or concurrency < 1 or max_wait < 0:
            raise ValueError("batch_size and concurrency must be >= 1, max_wait >= 0")
        self._embed = embed
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.max_batch_tokens = max_batch_tokens
        self._count = count_tokens
        self._concurrency = concurrency
        self.group_by_length = group_by_length
        self._pending: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.batches: list[int] = []
        """Size of every batch sent (observability and tests)."""

    async def __aenter__(self) -> EmbeddingBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if not self._tasks:
            self._closing = False
            self._tasks = [asyncio.create_task(self._run()) for _ in range(self._concurrency)]

    async def aclose(self) -> None:
        """Send what is pending, then stop."""
        self._closing = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def embed(self, texts: Sequence[str], tokens: Sequence[int] | None = None) -> list[Vector]:
        """One vector per text. `tokens`, the texts' token counts when the caller knows them (the
        chunker does), saves counting them again for `max_batch_tokens` and `group_by_length`."""
        if not texts:
            return []
        if not self._tasks:
            raise RuntimeError("EmbeddingBatcher is not running (use `async with` or start())")
        if tokens is not None and len(tokens) != len(texts):
            raise ValueError(f"{len(tokens)} token counts for {len(texts)} texts")
        loop = asyncio.get_running_loop()
        if tokens is None:
            count = self._count
            if count is None and self.group_by_length:
                count = _estimate_tokens
            tokens = [count(t) for t in texts] if count is not None else [0] * len(texts)
        items = [_Pending(t, n, loop.create_future()) for t, n in zip(texts, tokens, strict=True)]
        self._pending.extend(items)
        self._wake.set()
        return list(await asyncio.gather(*(item.future for item in items)))

    def _take(self) -> list[_Pending]:
        if self.group_by_length and self.max_batch_tokens is None and len(self._pending) > self.batch_size:
            pool = [self._pending.popleft() for _ in range(min(POOL, len(self._pending)))]
            chosen = pick_by_length([p.tokens for p in pool], self.batch_size)
            picked = set(chosen)
            self._pending.extendleft(reversed([p for i, p in enumerate(pool) if i not in picked]))
            return [pool[i] for i in chosen]
        tokens = [p.tokens for p in self._pending]
        n = take_count(tokens, self.batch_size, self.max_batch_tokens)
        return [self._pending.popleft() for _ in range(n)]

    async def _run(self) -> None:
        while True:
            # texts whose caller went away (cancelled) need no vector
            while self._pending and self._pending[0].future.done():
                self._pending.popleft()
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            waited = time.monotonic() - self._pending[0].since
            if not (
                self._closing or should_flush(len(self._pending), self.batch_size, waited, self.max_wait)
            ):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.max_wait - waited)
                continue
            await self._send([p for p in self._take() if not p.future.done()])

    async def _send(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        self.batches.append(len(batch))
        try:
            vectors = await self._embed([p.text for p in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"embedder returned {len(vectors)} vectors for {len(batch)} texts")
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, vector in zip(batch, vectors, strict=True):
            if not p.future.done():
                p.future.set_result(vector)
