"""Shared helpers of the store contract suite: a fixed clock base and short ways to set up jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from ingestq.model.job import ClaimRequest, Job, NewJob, Outcome, OutcomeKind
from ingestq.store import Store

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 30.0

StoreFactory = Callable[[], Awaitable[Store]]
"""The `more_stores` fixture: opens another Store instance on the same database."""


class OutcomeFields(TypedDict, total=False):
    """The optional fields of an `Outcome`, as keyword arguments."""

    result: Any
    error: str | None
    run_at: datetime | None


def at(seconds: float) -> datetime:
    """T0 plus `seconds`: every test passes `now` explicitly, nothing sleeps."""
    return T0 + timedelta(seconds=seconds)


async def insert(store: Store, now: datetime = T0, **fields: Any) -> Job:
    fields.setdefault("kind", "k")
    (job,) = await store.job_insert_many([NewJob(**fields)], now)
    return job


async def claim(
    store: Store,
    now: datetime = T0,
    worker: str = "w1",
    limit: int = 1,
    lease: float = LEASE,
    queues: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[Job]:
    req = ClaimRequest(worker_id=worker, limit=limit, lease_seconds=lease, queues=queues, kinds=kinds)
    return await store.job_claim(req, now)


async def claim_one(store: Store, now: datetime = T0, worker: str = "w1", lease: float = LEASE) -> Job:
    jobs = await claim(store, now, worker, 1, lease)
    assert len(jobs) == 1, f"expected one job to claim, got {jobs}"
    return jobs[0]


def outcome(job: Job, kind: OutcomeKind, **fields: Any) -> Outcome:
    """The outcome the holder of `job` (as claimed) would report."""
    assert job.lease_owner is not None
    return Outcome(job_id=job.id, lease_owner=job.lease_owner, attempt=job.attempt, kind=kind, **fields)


async def finish(store: Store, job: Job, kind: OutcomeKind, now: datetime = T0, **fields: Any) -> bool:
    applied = await store.job_finish_many([outcome(job, kind, **fields)], now)
    return job.id in applied
