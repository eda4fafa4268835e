"""Claim: order, limits, filters, due time, leases, and no double dispatch (guarantee 2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from contract_helpers import LEASE, T0, StoreFactory, at, claim, claim_one, finish, insert, outcome

from ingestq.model.job import ClaimRequest, JobFilter, JobState, NewJob, OutcomeKind, Progress
from ingestq.store import Store


async def test_claim_moves_to_running_under_a_lease(store: Store) -> None:
    job = await insert(store)
    (claimed,) = await claim(store, now=at(2), worker="w1", lease=12)
    assert claimed.id == job.id
    assert claimed.state is JobState.RUNNING
    assert claimed.attempt == 1
    assert claimed.lease_owner == "w1"
    assert claimed.lease_expires_at == at(14)
    assert claimed.started_at == at(2)
    assert await store.job_get(job.id) == claimed


async def test_a_claimed_job_is_the_row_as_stored(store: Store) -> None:
    """The claim builds its jobs partly from what it set itself: on every claim path (plain, capped, per
    queue, with outcomes) they must equal what the store reads back, history and all."""
    job = await insert(store, queue="q1", priority=3, dedupe_key="d", document_id="doc", payload={"a": [1]})
    first = await claim_one(store, now=at(1))
    await store.job_progress(first.id, "w1", first.attempt, Progress("parse", 2, 9), at(2))
    assert await finish(store, first, OutcomeKind.RETRY, now=at(3), error="boom", run_at=at(4))
    paths = [
        ClaimRequest(worker_id="w2", limit=5, lease_seconds=7),
        ClaimRequest(worker_id="w2", limit=5, lease_seconds=7, queues=("q1",)),
        ClaimRequest(worker_id="w2", limit=5, lease_seconds=7, queues=("q0", "q1"), kinds=("k",)),
        ClaimRequest(worker_id="w2", limit=5, lease_seconds=7, kind_limits={"k": 1, "other": 2}),
    ]
    for i, req in enumerate(paths):
        if i % 2:
            _, (claimed,) = await store.job_finish_and_claim([], req, at(5 + i))
        else:
            (claimed,) = await store.job_claim(req, at(5 + i))
        assert (claimed.id, claimed.attempt, claimed.errors[0].message) == (job.id, 2 + i, "boom")
        assert (claimed.progress, claimed.payload) == (Progress("parse", 2, 9), {"a": [1]})
        assert await store.job_get(job.id) == claimed, req
        released = outcome(claimed, OutcomeKind.RELEASED)
        assert job.id in await store.job_finish_many([released], at(5 + i))
        # a release gives the attempt back: bump it by a retry so each path claims a new attempt
        (again,) = await store.job_claim(paths[0], at(5 + i))
        assert await finish(store, again, OutcomeKind.RETRY, now=at(5 + i), error="boom", run_at=at(5 + i))


async def test_priority_first_then_fifo(store: Store) -> None:
    low_old = await insert(store, now=T0, priority=0)
    high_late = await insert(store, now=at(3), priority=5)
    low_new = await insert(store, now=at(1), priority=0)
    mid = await insert(store, now=at(2), priority=1)
    high_early = await insert(store, now=at(1), priority=5)
    same_time = await store.job_insert_many([NewJob(kind="k") for _ in range(3)], at(4))
    claimed = await claim(store, now=at(10), limit=100)
    expected = [high_early, high_late, mid, low_old, low_new, *same_time]
    assert [j.id for j in claimed] == [j.id for j in expected]


async def test_older_run_at_first_within_a_priority(store: Store) -> None:
    later = await insert(store, run_at=at(5))
    earlier = await insert(store, run_at=at(1))
    claimed = await claim(store, now=at(10), limit=2)
    assert [j.id for j in claimed] == [earlier.id, later.id]


async def test_due_jobs_are_found_among_many_scheduled_for_later(store: Store) -> None:
    scheduled = [NewJob(kind="k", priority=i % 4, run_at=at(3600 + i)) for i in range(400)]
    await store.job_insert_many(scheduled, T0)
    due = [
        await insert(store, now=at(i), priority=p, queue=q)
        for i, (p, q) in enumerate([(0, "a"), (3, "b"), (1, "a"), (3, "a")])
    ]
    expected = [due[1], due[3], due[2], due[0]]
    assert [j.id for j in await claim(store, now=at(10), limit=50)] == [j.id for j in expected]
    more = [await insert(store, now=at(20), priority=p, queue="a") for p in (2, 0)]
    assert [j.id for j in await claim(store, now=at(30), limit=50, queues=("a",))] == [more[0].id, more[1].id]
    assert await claim(store, now=at(30), limit=50, queues=("a", "b")) == []


async def test_limit_and_successive_claims(store: Store) -> None:
    jobs = await store.job_insert_many([NewJob(kind="k") for _ in range(5)], T0)
    first = await claim(store, limit=2)
    second = await claim(store, limit=2)
    third = await claim(store, limit=2)
    assert [j.id for j in first + second + third] == [j.id for j in jobs]
    assert await claim(store, limit=2) == []


async def test_zero_limit_claims_nothing(store: Store) -> None:
    await insert(store)
    assert await claim(store, limit=0) == []
    assert len(await claim(store, limit=1)) == 1


async def test_future_jobs_are_not_claimed_until_due(store: Store) -> None:
    job = await insert(store, run_at=at(60))
    assert await claim(store, now=at(59.999)) == []
    (claimed,) = await claim(store, now=at(60))
    assert claimed.id == job.id


async def test_queue_filter(store: Store) -> None:
    a = await insert(store, queue="a")
    b = await insert(store, queue="b", priority=9)
    c = await insert(store, queue="c")
    assert [j.id for j in await claim(store, queues=("a",), limit=10)] == [a.id]
    assert [j.id for j in await claim(store, queues=("c", "b"), limit=10)] == [b.id, c.id]
    assert await claim(store, queues=("a", "b", "c"), limit=10) == []


async def test_multi_queue_claim_keeps_global_order(store: Store) -> None:
    jobs = [await insert(store, queue=q, now=at(i)) for i, q in enumerate(["x", "y", "x", "z", "y"])]
    claimed = await claim(store, now=at(10), queues=("x", "y"), limit=10)
    assert [j.id for j in claimed] == [jobs[0].id, jobs[1].id, jobs[2].id, jobs[4].id]


async def test_kind_filter(store: Store) -> None:
    parse = await insert(store, kind="parse")
    embed = await insert(store, kind="embed")
    other = await insert(store, kind="other", queue="q2")
    assert [j.id for j in await claim(store, kinds=("embed",), limit=10)] == [embed.id]
    claimed = await claim(store, kinds=("parse", "other"), queues=("default",), limit=10)
    assert [j.id for j in claimed] == [parse.id]
    assert [j.id for j in await claim(store, kinds=("other",), limit=10)] == [other.id]


async def test_empty_filters_claim_nothing(store: Store) -> None:
    await insert(store)
    assert await claim(store, queues=(), limit=10) == []
    assert await claim(store, kinds=(), limit=10) == []


async def test_running_jobs_are_not_claimed_again(store: Store) -> None:
    await insert(store)
    assert len(await claim(store, worker="w1")) == 1
    assert await claim(store, worker="w2", now=at(LEASE - 1)) == []


async def test_concurrent_claimers_never_share_a_job(store: Store, more_stores: StoreFactory) -> None:
    total = 300
    await store.job_insert_many([NewJob(kind="k", payload={"i": i}) for i in range(total)], T0)
    stores = [store] + [await more_stores() for _ in range(3)]

    async def claimer(n: int) -> list[int]:
        s = stores[n % len(stores)]
        got: list[int] = []
        while True:
            batch = await claim(s, worker=f"w{n}", limit=7)
            if not batch:
                return got
            got.extend(j.id for j in batch)
            await asyncio.sleep(0)

    results = await asyncio.gather(*(claimer(n) for n in range(12)))
    all_ids = [i for r in results for i in r]
    assert len(all_ids) == total
    assert len(set(all_ids)) == total
    owners = {j.id: j.lease_owner for j in await store.job_list(JobFilter(limit=1000))}
    for n, ids in enumerate(results):
        assert all(owners[i] == f"w{n}" for i in ids)


async def test_kind_limits_cap_a_kind_and_keep_claim_order(store: Store) -> None:
    """kind_limits: at most n of a capped kind, the first in claim order; other kinds fill the rest."""
    heavy = [await insert(store, now=at(i), kind="heavy", priority=1 if i == 3 else 0) for i in range(4)]
    light = [await insert(store, now=at(10 + i), kind="light") for i in range(3)]
    req = ClaimRequest(worker_id="w1", limit=10, lease_seconds=LEASE, kind_limits={"heavy": 2})
    claimed = await store.job_claim(req, at(20))
    # heavy[3] has the highest priority, then heavy[0]; heavy[1:3] are left queued
    assert [j.id for j in claimed] == [heavy[3].id, heavy[0].id, *(j.id for j in light)]
    for job in (heavy[1], heavy[2]):
        row = await store.job_get(job.id)
        assert row is not None
        assert row.state is JobState.QUEUED
    again = await store.job_claim(replace(req, kind_limits={"heavy": 1, "other": 3}), at(21))
    assert [j.id for j in again] == [heavy[1].id]
    done = outcome(claimed[0], OutcomeKind.SUCCEEDED)
    applied, rest = await store.job_finish_and_claim([done], replace(req, kind_limits={"light": 0}), at(22))
    assert applied == {claimed[0].id}
    assert [j.id for j in rest] == [heavy[2].id]


async def test_kind_limits_apply_within_the_claim_limit(store: Store) -> None:
    """Only the first `limit` due jobs are candidates: a capped kind at the head shortens the claim
    rather than making it walk further (the worker claims again when it has room)."""
    await store.job_insert_many([NewJob(kind="heavy") for _ in range(5)], T0)
    await store.job_insert_many([NewJob(kind="light") for _ in range(5)], at(1))
    req = ClaimRequest(worker_id="w1", limit=4, lease_seconds=LEASE, kind_limits={"heavy": 1})
    claimed = await store.job_claim(req, at(2))
    assert [j.kind for j in claimed] == ["heavy"]
    rest = await store.job_claim(replace(req, kinds=("light",), kind_limits=None), at(2))
    assert [j.kind for j in rest] == ["light"] * 4
