"""LISTEN/NOTIFY wake-ups across two store instances (two pools, two listener connections).

No test sleeps to assert: each waits for an event with a max_wait far longer than the test's own
timeout for that step, so a missing notification fails the test instead of slowing it down.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.store.postgres.store import PostgresStore

PG_BACKENDS = ["pg"] + (["pg-ext"] if os.environ.get("INGESTQ_TEST_PG_URL") else [])
pytestmark = pytest.mark.parametrize("backend", PG_BACKENDS, indirect=True)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
NEVER = 3600.0  # a max_wait no test may reach: only a notification ends the wait
STEP_TIMEOUT = 10.0


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    producer, consumer = PostgresStore(database_url), PostgresStore(database_url)
    await producer.open()
    await consumer.open()
    try:
        await consumer.start_listening()
        yield producer, consumer
    finally:
        await producer.close()
        await consumer.close()


async def _woken(store: PostgresStore, action: object) -> None:
    waiter = asyncio.create_task(store.wait_for_jobs(NEVER))
    await asyncio.sleep(0)  # let the waiter start waiting before the action
    await action  # type: ignore[misc]
    await asyncio.wait_for(waiter, STEP_TIMEOUT)


async def test_insert_wakes_another_store(pair: tuple[PostgresStore, PostgresStore]) -> None:
    producer, consumer = pair
    await _woken(consumer, producer.job_insert_many([NewJob(kind="k")], NOW))
    assert await consumer.job_claim(ClaimRequest("c", 10, 30), NOW)


async def test_a_batch_sends_one_notification(database_url: str) -> None:
    store = PostgresStore(database_url)
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listen:
            await listen.execute("LISTEN ingestq_jobs")
            await store.job_insert_many([NewJob(kind="k") for _ in range(500)], NOW)
            await store.job_insert_many([NewJob(kind="k") for _ in range(3)], NOW)
            await store.job_insert_bulk(NewJob(kind="k"), ["{}"] * 200, NOW)
            # notifications arrive in commit order: everything before the sentinel is ours
            await listen.execute("NOTIFY ingestq_jobs, 'sentinel'")
            seen: list[str] = []
            async for note in listen.notifies(timeout=STEP_TIMEOUT):
                if note.payload == "sentinel":
                    break
                seen.append(note.payload)
        assert len(seen) == 3, f"expected one notification per insert statement, got {len(seen)}"
    finally:
        await store.close()


async def test_notification_between_waits_is_not_lost(pair: tuple[PostgresStore, PostgresStore]) -> None:
    producer, consumer = pair
    await producer.job_insert_many([NewJob(kind="k")], NOW)
    # nobody was waiting when it arrived; the next wait returns as soon as it is delivered
    await asyncio.wait_for(consumer.wait_for_jobs(NEVER), STEP_TIMEOUT)


async def test_retry_outcome_wakes_listeners(pair: tuple[PostgresStore, PostgresStore]) -> None:
    producer, consumer = pair
    await producer.job_insert_many([NewJob(kind="k")], NOW)
    await asyncio.wait_for(consumer.wait_for_jobs(NEVER), STEP_TIMEOUT)
    (job,) = await producer.job_claim(ClaimRequest("p", 1, 30), NOW)
    retry = Outcome(job.id, "p", job.attempt, OutcomeKind.RETRY, error="x", run_at=NOW)
    await _woken(consumer, producer.job_finish_many([retry], NOW))


async def test_wait_returns_after_max_wait_without_notification(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    _, consumer = pair
    await asyncio.wait_for(consumer.wait_for_jobs(0.05), STEP_TIMEOUT)


async def test_rescue_wakes_listeners(pair: tuple[PostgresStore, PostgresStore]) -> None:
    producer, consumer = pair
    await producer.job_insert_many([NewJob(kind="k")], NOW)
    await asyncio.wait_for(consumer.wait_for_jobs(NEVER), STEP_TIMEOUT)
    await producer.job_claim(ClaimRequest("p", 1, lease_seconds=5), NOW)
    await _woken(consumer, producer.job_rescue_stale(NOW + timedelta(seconds=10)))
