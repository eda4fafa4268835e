"""job_finish_and_claim: the worker's outcomes and its next claim in one transaction."""

from __future__ import annotations

import asyncio

import pytest
from contract_helpers import LEASE, T0, StoreFactory, at, claim, insert, outcome

from ingestq.model.job import ClaimRequest, Job, JobFilter, JobState, NewJob, OutcomeKind
from ingestq.store import Store


def request(worker: str = "w1", limit: int = 10, **fields: object) -> ClaimRequest:
    return ClaimRequest(worker_id=worker, limit=limit, lease_seconds=LEASE, **fields)  # type: ignore[arg-type]


async def test_finishes_and_claims_at_once(store: Store) -> None:
    jobs = await store.job_insert_many([NewJob(kind="k") for _ in range(5)], T0)
    first = await claim(store, limit=2)
    applied, claimed = await store.job_finish_and_claim(
        [outcome(first[0], OutcomeKind.SUCCEEDED, result={"ok": 1}), outcome(first[1], OutcomeKind.FAILED)],
        request(limit=2),
        at(1),
    )
    assert applied == {first[0].id, first[1].id}
    assert [j.id for j in claimed] == [jobs[2].id, jobs[3].id]
    assert all(j.state is JobState.RUNNING and j.lease_owner == "w1" for j in claimed)
    assert all(j.attempt == 1 and j.started_at == at(1) for j in claimed)
    assert all(j.lease_expires_at == at(1 + LEASE) for j in claimed)
    done = await store.job_get(first[0].id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"ok": 1}
    failed = await store.job_get(first[1].id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.last_error == "error"
    for job in claimed:
        assert await store.job_get(job.id) == job


async def test_finished_counts_include_what_it_finished(store: Store) -> None:
    """stats counts the outcomes written with a claim (on PostgreSQL both updates are one statement)."""
    await store.job_insert_many([NewJob(kind="k") for _ in range(6)], T0)
    held = await claim(store, limit=3)
    applied, claimed = await store.job_finish_and_claim(
        [
            outcome(held[0], OutcomeKind.SUCCEEDED),
            outcome(held[1], OutcomeKind.FAILED, error="no"),
            outcome(held[2], OutcomeKind.CANCELLED),
        ],
        request(limit=2),
        at(1),
    )
    assert len(applied) == 3
    assert len(claimed) == 2
    (stats,) = await store.stats(at(1))
    assert stats.counts == {
        JobState.QUEUED: 1,
        JobState.RUNNING: 2,
        JobState.SUCCEEDED: 1,
        JobState.FAILED: 1,
        JobState.CANCELLED: 1,
    }


async def test_limit_is_respected(store: Store) -> None:
    await store.job_insert_many([NewJob(kind="k") for _ in range(8)], T0)
    (held,) = await claim(store)
    applied, claimed = await store.job_finish_and_claim(
        [outcome(held, OutcomeKind.SUCCEEDED)], request(limit=3), at(1)
    )
    assert applied == {held.id}
    assert len(claimed) == 3
    _, zero = await store.job_finish_and_claim([], request(limit=0), at(1))
    assert zero == []
    _, rest = await store.job_finish_and_claim([], request(limit=100), at(1))
    assert len(rest) == 4


async def test_without_a_claim_it_only_finishes(store: Store) -> None:
    await insert(store)
    await insert(store)
    (held,) = await claim(store)
    applied, claimed = await store.job_finish_and_claim([outcome(held, OutcomeKind.SUCCEEDED)], None, at(1))
    assert applied == {held.id}
    assert claimed == []
    assert len(await store.job_list(JobFilter(states=(JobState.QUEUED,)))) == 1


async def test_claim_filters_apply(store: Store) -> None:
    a = await insert(store, queue="a")
    await insert(store, queue="b")
    await insert(store, queue="a", kind="other")
    _, claimed = await store.job_finish_and_claim([], request(queues=("a",), kinds=("k",)), at(1))
    assert [j.id for j in claimed] == [a.id]
    assert (await store.job_finish_and_claim([], request(queues=()), at(1)))[1] == []


async def test_requeued_jobs_are_not_claimed_by_the_same_call(store: Store) -> None:
    """A job this call retries (due now) or releases is left for the next claim, not handed back."""
    retried, released = await store.job_insert_many([NewJob(kind="k"), NewJob(kind="k")], T0)
    held = await claim(store, limit=2)
    applied, claimed = await store.job_finish_and_claim(
        [
            outcome(held[0], OutcomeKind.RETRY, error="boom", run_at=at(1)),
            outcome(held[1], OutcomeKind.RELEASED),
        ],
        request(limit=10),
        at(1),
    )
    assert applied == {retried.id, released.id}
    assert claimed == []
    again = await claim(store, now=at(2), limit=10)
    assert {j.id for j in again} == {retried.id, released.id}


async def test_fencing_still_holds(store: Store) -> None:
    """A stale holder's outcome does not apply; its claim part still does (one transaction)."""
    stale = await insert(store)
    (old,) = await claim(store, worker="w1", lease=5)
    assert await store.job_rescue_stale(at(6)) == [stale.id]
    fresh = await insert(store, now=at(6.5))
    (current,) = await claim(store, worker="w2", now=at(7))
    assert current.id == stale.id
    assert current.attempt == 2
    applied, claimed = await store.job_finish_and_claim(
        [outcome(old, OutcomeKind.SUCCEEDED)], request(worker="w1"), at(8)
    )
    assert applied == set()
    assert [j.id for j in claimed] == [fresh.id]
    row = await store.job_get(stale.id)
    assert row is not None
    assert row.state is JobState.RUNNING
    assert row.lease_owner == "w2"
    assert row.attempt == 2


async def test_a_refused_outcome_claims_nothing(store: Store) -> None:
    """All or nothing: when the outcomes cannot be written, no job is left claimed."""
    await insert(store)
    await insert(store)
    (job,) = await claim(store)
    bad = outcome(job, OutcomeKind.SUCCEEDED, result={"not json": object()})
    with pytest.raises(ValueError, match="JSON"):
        await store.job_finish_and_claim([bad], request(), at(1))
    queued = await store.job_list(JobFilter(states=(JobState.QUEUED,)))
    assert len(queued) == 1
    row = await store.job_get(job.id)
    assert row is not None
    assert row.state is JobState.RUNNING


async def test_racing_workers_never_share_a_job(store: Store, more_stores: StoreFactory) -> None:
    total = 300
    await store.job_insert_many([NewJob(kind="k", payload={"i": i}) for i in range(total)], T0)
    stores = [store] + [await more_stores() for _ in range(3)]

    async def worker(n: int) -> list[int]:
        s = stores[n % len(stores)]
        got: list[int] = []
        holding: list[Job] = []
        while True:
            done = [outcome(j, OutcomeKind.SUCCEEDED) for j in holding]
            applied, holding = await s.job_finish_and_claim(done, request(worker=f"w{n}", limit=7), at(1))
            assert applied == {o.job_id for o in done}
            if not holding:
                return got
            got.extend(j.id for j in holding)
            await asyncio.sleep(0)

    results = await asyncio.gather(*(worker(n) for n in range(8)))
    all_ids = [i for r in results for i in r]
    assert len(all_ids) == total
    assert len(set(all_ids)) == total
    jobs = await store.job_list(JobFilter(limit=1000))
    assert all(j.state is JobState.SUCCEEDED for j in jobs)
    assert len(jobs) == total
