"""Cross-document batching: many small documents share one model call.

Each document's job awaits `batcher.embed(texts)`; the batcher pools the texts of every job in flight
and sends them to the embedder in batches of up to `batch_size` (and `max_batch_tokens`). A batch goes
out as soon as it is full, or when its oldest text has waited `max_wait` seconds, so a lone document
is not held back for long. While the model is busy with one batch the next one fills up, so under load
batches are full without any waiting. When to flush and how much to take are the pure functions
`should_flush` and `take_count` in `base`.
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


@dataclass(slots=True)
class _Pending:
    text: str
    tokens: int
    future: asyncio.Future[Vector]
    since: float = field(default_factory=time.monotonic)


class EmbeddingBatcher:
    def __init__(
        self,
        embed: EmbedFn,
        batch_size: int = 32,
        max_wait: float = 0.01,
        max_batch_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        concurrency: int = 1,
    ) -> None:
        if batch_size < 1 or concurrency < 1 or max_wait < 0:
            raise ValueError("batch_size and concurrency must be >= 1, max_wait >= 0")
        self._embed = embed
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.max_batch_tokens = max_batch_tokens
        self._count = count_tokens
        self._concurrency = concurrency
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

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        if not self._tasks:
            raise RuntimeError("EmbeddingBatcher is not running (use `async with` or start())")
        loop = asyncio.get_running_loop()
        items = [_Pending(t, self._count(t) if self._count else 0, loop.create_future()) for t in texts]
        self._pending.extend(items)
        self._wake.set()
        return list(await asyncio.gather(*(item.future for item in items)))

    def _take(self) -> list[_Pending]:
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
