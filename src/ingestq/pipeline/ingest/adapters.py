"""The pipeline's stores, backed by the database: rate-limit buckets (so a limit holds across every worker)
and the embedding cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ingestq.clock import Clock
from ingestq.model.document import BucketRow, Vector
from ingestq.pipeline.embed.ratelimit import BucketState, RateLimits, reserve
from ingestq.store.base import IndexStore


class DatabaseBuckets:
    """Rate-limit buckets in the database, so a limit holds across every worker."""

    def __init__(self, store: IndexStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def reserve(self, key: str, limits: RateLimits, requests: int, tokens: int) -> float:
        waits: list[float] = []

        def update(row: BucketRow | None) -> BucketRow:
            state = BucketState(row.requests, row.tokens, row.updated_at) if row is not None else None
            new, wait = reserve(state, limits, self._clock.now(), requests, tokens)
            waits.append(wait)  # the store may call `update` again on a serialisation retry: last wins
            return BucketRow(new.requests, new.tokens, new.updated_at)

        await self._store.rate_bucket_update(key, update)
        return waits[-1]


class StoreCache:
    """The embedding cache (model + chunk text hash → vector) in the database, shared by every worker."""

    def __init__(self, store: IndexStore, model_id: str, clock: Clock) -> None:
        self._store, self._model_id, self._clock = store, model_id, clock

    async def get_many(self, keys: Sequence[str]) -> Mapping[str, Vector]:
        return await self._store.embed_cache_get(self._model_id, keys)

    async def put_many(self, items: Mapping[str, Vector]) -> None:
        await self._store.embed_cache_put(self._model_id, dict(items), self._clock.now())
