"""A worker's heartbeat on PostgreSQL has a connection of its own: from the shared pool it waited behind
bulk writes (64 documents' index commits, a backfill) and, past the pool timeout, the worker's leases
expired and its live jobs were rescued from under it (issue 8: heartbeats never queued behind bulk
writes). Every pooled connection is held here while the heartbeat runs."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from ingestq.model.job import ClaimRequest, NewJob, WorkerBeat
from ingestq.store.postgres.store import PostgresStore


async def test_a_heartbeat_gets_through_while_every_pooled_connection_is_busy(pg_url: str) -> None:
    store = PostgresStore(pg_url, pool_max_size=2, pool_timeout=2.0)
    await store.open()
    try:
        now = datetime(2030, 1, 1, tzinfo=UTC)
        await store.job_insert_many([NewJob(kind="k")], now)
        (job,) = await store.job_claim(ClaimRequest("w1", 1, 30.0), now)
        async with contextlib.AsyncExitStack() as held:
            for _ in range(2):  # the whole shared pool, as bulk writes would hold it
                await held.enter_async_context(store._connection())
            beat = WorkerBeat("w1", "host", 1, None, 1, (job.id,), 30.0)
            reply = await asyncio.wait_for(store.worker_heartbeat(beat, now), 10)
        assert reply.lost == frozenset()  # the lease was extended: the job is still this worker's
    finally:
        await store.close()
