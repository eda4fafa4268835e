"""Repairs every worker runs in the background: the rescuer and the retention cleaner.

Both are idempotent statements in the store, so every worker runs them and no leader election is needed:
two rescuers racing on the same stale job move it once (the update is conditioned on the lease having
expired). Rescue is built in, not an opt-in recipe: with the default 15 s lease a killed worker's jobs
run again within about 20 s (lease + one rescue interval).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from ingestq.clock import Clock
from ingestq.errors import FeatureUnavailable
from ingestq.model.job import Retention
from ingestq.model.webhook import DeliveryStatus
from ingestq.worker.probes import NO_PROBES, Probes

if TYPE_CHECKING:
    from ingestq.store.base import Store

log = logging.getLogger("ingestq.worker")

# A blob is put just before the document that names it is registered (milliseconds apart); a blob put
# again refreshes its age at most every 5 minutes (blob_put): 15 minutes leave the sweep 10 of margin.
BLOB_GRACE = 900.0
BLOB_BATCH = 100  # blobs may be large (upload_max_bytes): small deletes keep the write lock short


class Rescuer:
    def __init__(self, store: Store, clock: Clock, probes: Probes = NO_PROBES) -> None:
        self._store = store
        self._clock = clock
        self._probes = probes

    async def run_once(self) -> list[int]:
        ids = await self._store.job_rescue_stale(self._clock.now())
        if ids:
            log.warning("rescued %d jobs whose worker stopped heartbeating: %s", len(ids), ids[:20])
        self._probes.hit("rescued", ids)
        return ids


class Cleaner:
    """Deletes finished jobs past their retention, then embedding-cache entries past theirs, in bounded
    batches so one pass never holds a long write lock (SQLite has a single writer) however much history
    piled up."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        retention: Retention,
        batch: int = 10_000,
        probes: Probes = NO_PROBES,
        embed_cache_retention: float | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention
        self._batch = batch
        self._probes = probes
        self._cache_retention = embed_cache_retention

    async def run_once(self) -> int:
        total = 0
        while True:
            n = await self._store.job_prune(self._retention, self._clock.now(), limit=self._batch)
            total += n
            if n < self._batch:
                break
            await asyncio.sleep(0)  # let the worker's own writes in between batches
        if total:
            log.info("pruned %d finished jobs past retention", total)
        self._probes.hit("pruned", total)
        await self.prune_embed_cache()
        await self.prune_blobs()
        await self.prune_webhooks()
        return total

    async def prune_webhooks(self) -> int:
        """Finished webhook deliveries (and their attempts) kept as long as finished jobs: delivered ones
        as succeeded jobs, failed ones as failed jobs. Their delivery jobs are pruned with the other
        jobs; before this the delivery rows stayed for ever."""
        from ingestq.store.webhook_base import WebhookStore  # here: a worker starts without the protocols

        if not isinstance(self._store, WebhookStore):
            return 0
        now = self._clock.now()
        kept = (
            (DeliveryStatus.DELIVERED, self._retention.succeeded),
            (DeliveryStatus.FAILED, self._retention.failed),
        )
        total = 0
        try:
            for status, seconds in kept:
                if seconds is None:
                    continue
                before = now - timedelta(seconds=seconds)
                while True:
                    n = await self._store.webhook_prune(status, before, limit=self._batch)
                    total += n
                    if n < self._batch:
                        break
                    await asyncio.sleep(0)
        except FeatureUnavailable:  # PostgreSQL without pgvector: no webhook tables
            return total
        if total:
            log.info("pruned %d webhook deliveries past retention", total)
        return total

    async def prune_blobs(self) -> int:
        """Uploaded bytes no document names any more (the document was deleted, or a new upload
        replaced them), stored or put again more than BLOB_GRACE ago. Before this nothing deleted
        them: the one-hour soak saw them pile up, one per upload, behind the deleted documents."""
        from ingestq.store.base import IndexStore  # here: a worker starts without the store's protocols

        if not isinstance(self._store, IndexStore):
            return 0
        before = self._clock.now() - timedelta(seconds=BLOB_GRACE)
        total = 0
        try:
            while True:
                n = await self._store.blob_prune(before, limit=BLOB_BATCH)
                total += n
                if n < BLOB_BATCH:
                    break
                await asyncio.sleep(0)
        except FeatureUnavailable:  # PostgreSQL without pgvector: no blobs table
            return 0
        if total:
            log.info("pruned %d uploaded blobs no document names", total)
        return total

    async def prune_embed_cache(self) -> int:
        """Entries written longer ago than the cache's retention. Without it the cache kept a vector
        for every chunk ever embedded: the one-hour soak saw it grow with every upload while the
        documents themselves were deleted."""
        from ingestq.store.base import IndexStore  # here: a worker starts without the store's protocols

        if self._cache_retention is None or not isinstance(self._store, IndexStore):
            return 0
        before = self._clock.now() - timedelta(seconds=self._cache_retention)
        total = 0
        try:
            while True:
                n = await self._store.embed_cache_prune(before, limit=self._batch)
                total += n
                if n < self._batch:
                    break
                await asyncio.sleep(0)
        except FeatureUnavailable:  # PostgreSQL without pgvector: no index tables, no cache to prune
            self._cache_retention = None
        if total:
            log.info("pruned %d embedding-cache entries past retention", total)
        return total


async def every(interval: float, action: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
    """Run `action` now and then every `interval` seconds until `stop`; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            await action()
        except Exception as exc:
            log.warning("maintenance task failed (will retry): %s", exc)
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass
