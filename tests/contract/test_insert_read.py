"""Insert, get and list: what an enqueue stores and how it is read back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from contract_helpers import T0, StoreFactory, at, insert

from ingestq.model.job import DEFAULT_MAX_ATTEMPTS, JobFilter, JobState, NewJob
from ingestq.store import Store


async def test_insert_returns_the_stored_job(store: Store) -> None:
    new = NewJob(
        kind="ingest",
        payload={"path": "a.pdf", "n": [1, 2], "nested": {"ok": True}},
        queue="docs",
        priority=3,
        run_at=at(60),
        max_attempts=7,
        dedupe_key="doc-a",
        document_id="doc-a",
    )
    (job,) = await store.job_insert_many([new], T0)
    assert job.id > 0
    assert (job.queue, job.kind, job.payload, job.priority) == ("docs", "ingest", new.payload, 3)
    assert job.state is JobState.QUEUED
    assert (job.run_at, job.created_at) == (at(60), T0)
    assert (job.attempt, job.max_attempts) == (0, 7)
    assert (job.dedupe_key, job.document_id) == ("doc-a", "doc-a")
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert not job.cancel_requested
    assert job.progress is None
    assert job.result is None
    assert job.last_error is None
    assert job.errors == ()
    assert job.started_at is None
    assert job.finished_at is None
    assert await store.job_get(job.id) == job


async def test_defaults_run_now_on_the_default_queue(store: Store) -> None:
    job = await insert(store, now=at(5), kind="k")
    assert job.run_at == at(5)
    assert job.queue == "default"
    assert job.max_attempts == DEFAULT_MAX_ATTEMPTS
    stored = await store.job_get(job.id)
    assert stored is not None
    assert stored.run_at.tzinfo is not None
    assert stored.run_at.utcoffset() == timedelta(0)


async def test_times_keep_microseconds(store: Store) -> None:
    when = T0 + timedelta(seconds=1, microseconds=123_457)
    job = await insert(store, now=when, run_at=when)
    stored = await store.job_get(job.id)
    assert stored is not None
    assert stored.created_at == when
    assert stored.run_at == when


async def test_get_missing_is_none(store: Store) -> None:
    assert await store.job_get(987_654) is None


async def test_bulk_insert_keeps_input_order_and_ids_grow(store: Store) -> None:
    jobs = await store.job_insert_many([NewJob(kind="k", payload={"i": i}) for i in range(500)], T0)
    assert [j.payload["i"] for j in jobs] == list(range(500))
    ids = [j.id for j in jobs]
    assert ids == sorted(ids)
    assert len(set(ids)) == 500
    later = await insert(store)
    assert later.id > ids[-1]


async def test_insert_nothing(store: Store) -> None:
    assert await store.job_insert_many([], T0) == []


async def test_ids_are_not_reused_after_purge(store: Store) -> None:
    from contract_helpers import claim_one, finish

    from ingestq.model.job import OutcomeKind

    job = await insert(store)
    claimed = await claim_one(store)
    assert await finish(store, claimed, OutcomeKind.SUCCEEDED)
    assert await store.job_purge([JobState.SUCCEEDED], None, None) == 1
    again = await insert(store)
    assert again.id > job.id


async def test_unserialisable_payload_is_a_clear_error(store: Store) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await store.job_insert_many([NewJob(kind="k", payload={"x": object()})], T0)
    assert await store.job_list(JobFilter()) == []


async def test_list_newest_first_with_keyset_pagination(store: Store) -> None:
    jobs = await store.job_insert_many([NewJob(kind="k", payload={"i": i}) for i in range(7)], T0)
    ids = [j.id for j in jobs]
    page1 = await store.job_list(JobFilter(limit=3))
    assert [j.id for j in page1] == ids[::-1][:3]
    page2 = await store.job_list(JobFilter(limit=3, before_id=page1[-1].id))
    assert [j.id for j in page2] == ids[::-1][3:6]
    page3 = await store.job_list(JobFilter(limit=3, before_id=page2[-1].id))
    assert [j.id for j in page3] == ids[:1]
    assert await store.job_list(JobFilter(limit=3, before_id=ids[0])) == []


async def test_list_filters(store: Store) -> None:
    a = await insert(store, kind="parse", queue="docs", document_id="d1")
    b = await insert(store, kind="embed", queue="docs", document_id="d2")
    c = await insert(store, kind="parse", queue="mail")
    from contract_helpers import claim

    (running,) = await claim(store, queues=("mail",))
    assert running.id == c.id

    async def ids(**kw: object) -> list[int]:
        return [j.id for j in await store.job_list(JobFilter(**kw))]  # type: ignore[arg-type]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(queues=("docs",)) == [b.id, a.id]
    assert await ids(queues=("docs", "mail")) == [c.id, b.id, a.id]
    assert await ids(kinds=("parse",)) == [c.id, a.id]
    assert await ids(states=(JobState.RUNNING,)) == [c.id]
    assert await ids(states=(JobState.QUEUED, JobState.RUNNING), kinds=("parse",)) == [c.id, a.id]
    assert await ids(states=(JobState.FAILED,)) == []
    assert await ids(document_id="d2") == [b.id]
    assert await ids(queues=("docs",), kinds=("parse",), document_id="d1") == [a.id]
    assert await ids(queues=("nope",)) == []


async def test_list_by_each_state_with_other_filters_and_pages(store: Store) -> None:
    from contract_helpers import claim, finish

    from ingestq.model.job import OutcomeKind

    await store.job_insert_many(
        [
            NewJob(kind=("a" if i % 3 else "b"), queue=("q1" if i % 2 else "q2"), document_id=f"d{i % 4}")
            for i in range(40)
        ],
        T0,
    )
    running = await claim(store, now=at(1), limit=30)
    kinds = [OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.CANCELLED]
    for i, job in enumerate(running[:24]):
        assert await finish(store, job, kinds[i % 3], now=at(2), error="e")
    every = await store.job_list(JobFilter(limit=1000))
    assert len(every) == 40
    for state in JobState:
        for flt in (
            JobFilter(states=(state,), limit=4),
            JobFilter(states=(state,), queues=("q1",), limit=3),
            JobFilter(states=(state,), kinds=("a",), queues=("q1", "q2"), limit=2),
            JobFilter(states=(state, JobState.QUEUED), document_id="d1", limit=2),
        ):
            expected = [
                j.id
                for j in every
                if j.state in flt.states  # type: ignore[operator]
                and (flt.queues is None or j.queue in flt.queues)
                and (flt.kinds is None or j.kind in flt.kinds)
                and (flt.document_id is None or j.document_id == flt.document_id)
            ]
            got: list[int] = []
            before: int | None = None
            while True:
                page = await store.job_list(
                    JobFilter(flt.states, flt.queues, flt.kinds, flt.document_id, before, flt.limit)
                )
                assert len(page) <= flt.limit
                if not page:
                    break
                got.extend(j.id for j in page)
                before = page[-1].id
            assert got == expected, (state, flt)
    assert await store.job_list(JobFilter(states=())) == []


async def test_the_store_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.backend in ("sqlite", "postgresql")


async def test_bulk_insert_returns_exactly_what_was_stored_even_after_purges(store: Store) -> None:
    from contract_helpers import claim, finish

    from ingestq.model.job import OutcomeKind

    await store.job_insert_many([NewJob(kind="k") for _ in range(3)], T0)
    for job in await claim(store, limit=3):
        assert await finish(store, job, OutcomeKind.SUCCEEDED)
    assert await store.job_purge([JobState.SUCCEEDED], None, None) == 3  # the table is empty again
    jobs = await store.job_insert_many(
        [NewJob(kind="k", payload={"i": i}, priority=i % 2) for i in range(50)], at(1)
    )
    assert jobs[0].id > 3
    for job in jobs:
        assert await store.job_get(job.id) == job


async def test_concurrent_bulk_inserts_each_get_their_own_rows(
    store: Store, more_stores: StoreFactory
) -> None:
    import asyncio

    stores = [store] + [await more_stores() for _ in range(3)]

    async def bulk(n: int) -> list[int]:
        jobs = await stores[n].job_insert_many(
            [NewJob(kind=f"k{n}", payload={"i": i}) for i in range(200)], T0
        )
        for job in (jobs[0], jobs[99], jobs[-1]):
            assert await store.job_get(job.id) == job
        return [j.id for j in jobs]

    batches = await asyncio.gather(*(bulk(n) for n in range(4)))
    all_ids = [i for b in batches for i in b]
    assert len(set(all_ids)) == 800
