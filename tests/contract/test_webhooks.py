"""Webhooks in the store, on every backend: the transactional outbox (a delivery and its job are inserted
by the very statement that finishes a job or settles a document), endpoints, callbacks, attempts,
listing and redelivery."""

from __future__ import annotations

import json
from typing import cast

import pytest
from contract_helpers import T0, at, claim, claim_one, finish, outcome
from index_helpers import DIM, MODEL, chunk, index_of, running_job, write

from ingestq.errors import DeliveryNotFound, InvalidJobState, QueueFull
from ingestq.model.document import DocumentRef, DocumentStatus
from ingestq.model.job import JobFilter, JobState, NewJob, OutcomeKind, QueueConfig
from ingestq.model.webhook import WEBHOOK_KIND, DeliveryFilter, DeliveryOptions, DeliveryStatus
from ingestq.store import Store
from ingestq.store.base import Backend

OPTIONS = DeliveryOptions(queue="hooks", max_attempts=4)
URL_A = "https://a.example/hook"
URL_B = "https://b.example/hook"
V1 = [1.0, 0.0, 0.0, 0.0]


@pytest.fixture(autouse=True)
async def _needs_the_index_schema(store: Store) -> None:
    await index_of(store)  # webhooks build on the documents tables: no pgvector, no webhooks (skips)


def backend(store: Store) -> Backend:
    return cast(Backend, store)


async def webhook_jobs(store: Store) -> list[int]:
    return [j.id for j in await store.job_list(JobFilter(kinds=(WEBHOOK_KIND,)))]


async def test_the_finish_of_a_job_with_callbacks_enqueues_its_deliveries(store: Store) -> None:
    st = backend(store)
    job = await st.job_insert_with_callbacks(NewJob(kind="k"), [URL_B, URL_A, URL_A], OPTIONS, T0)
    assert await st.job_callbacks(job.id) == [URL_A, URL_B]
    assert await st.webhook_delivery_list(DeliveryFilter()) == []
    running = await claim_one(st)
    assert await finish(st, running, OutcomeKind.SUCCEEDED, now=at(2), result={"n": 1})
    # the same statement that finished the job inserted the deliveries and their jobs: no later step
    deliveries = await st.webhook_delivery_list(DeliveryFilter())
    assert [(d.url, d.event, d.status, d.subject_job_id) for d in deliveries] == [
        (URL_B, "job.succeeded", DeliveryStatus.PENDING, job.id),
        (URL_A, "job.succeeded", DeliveryStatus.PENDING, job.id),
    ]
    for d in deliveries:
        assert d.message_id.startswith("msg_")
        assert len(d.message_id) == 36
        assert d.created_at == at(2)
        body = json.loads(d.body)
        assert body["type"] == "job.succeeded"
        assert body["timestamp"] == "2030-01-01T00:00:02.000Z"
        assert body["data"] == {
            "job_id": job.id,
            "kind": "k",
            "queue": "default",
            "state": "succeeded",
            "attempt": 1,
            "document_id": None,
            "result": {"n": 1},
            "error": None,
        }
        assert d.job_id is not None
        delivery_job = await st.job_get(d.job_id)
        assert delivery_job is not None
        assert (delivery_job.kind, delivery_job.queue, delivery_job.state) == (
            WEBHOOK_KIND,
            "hooks",
            JobState.QUEUED,
        )
        assert (delivery_job.payload, delivery_job.max_attempts) == ({"delivery_id": d.id}, 4)
    assert len({d.message_id for d in deliveries}) == 2


async def test_a_job_without_callbacks_enqueues_nothing(store: Store) -> None:
    (_job,) = await store.job_insert_many([NewJob(kind="k")], T0)
    running = await claim_one(store)
    assert await finish(store, running, OutcomeKind.FAILED, error="bad")
    assert await backend(store).webhook_delivery_list(DeliveryFilter()) == []
    assert await webhook_jobs(store) == []


async def test_a_fenced_out_outcome_enqueues_nothing_and_a_retry_is_no_end(store: Store) -> None:
    st = backend(store)
    await st.job_insert_with_callbacks(NewJob(kind="k", max_attempts=3), [URL_A], OPTIONS, T0)
    running = await claim_one(st)
    stale = outcome(running, OutcomeKind.SUCCEEDED)
    assert await finish(st, running, OutcomeKind.RETRY, error="later", run_at=at(1))
    assert await st.job_finish_many([stale], at(1)) == set()  # its attempt is gone: fenced
    assert await st.webhook_delivery_list(DeliveryFilter()) == []
    again = await claim_one(st, now=at(1))
    assert await finish(st, again, OutcomeKind.FAILED, now=at(2), error="bad input")
    (d,) = await st.webhook_delivery_list(DeliveryFilter())
    assert d.event == "job.failed"
    assert json.loads(d.body)["data"]["error"] == "bad input"


async def test_every_way_a_job_ends_enqueues_a_delivery(store: Store) -> None:
    """A person's cancel of a queued job and the rescuer failing an exhausted one go through other
    statements than a worker's outcome: the trigger sees them all."""
    st = backend(store)
    queued = await st.job_insert_with_callbacks(NewJob(kind="k"), [URL_A], OPTIONS, T0)
    await st.job_cancel(queued.id, at(1))
    lost = await st.job_insert_with_callbacks(NewJob(kind="k", max_attempts=1), [URL_B], OPTIONS, T0)
    (held,) = await claim(st, now=at(1), kinds=("k",))
    assert held.id == lost.id
    assert lost.id in await st.job_rescue_stale(at(100))
    events = {(d.subject_job_id, d.event) for d in await st.webhook_delivery_list(DeliveryFilter())}
    assert events == {(queued.id, "job.cancelled"), (lost.id, "job.failed")}


async def test_callbacks_go_in_with_the_job_or_not_at_all(store: Store) -> None:
    st = backend(store)
    await st.queue_configure(QueueConfig("small", max_depth=0))
    with pytest.raises(QueueFull):
        await st.job_insert_with_callbacks(NewJob(kind="k", queue="small"), [URL_A], OPTIONS, T0)
    assert await st.job_list(JobFilter(queues=("small",))) == []
    first = await st.job_insert_with_callbacks(NewJob(kind="k", dedupe_key="d"), [URL_A], OPTIONS, T0)
    again = await st.job_insert_with_callbacks(NewJob(kind="k", dedupe_key="d"), [URL_B], OPTIONS, T0)
    assert again.id == first.id
    assert await st.job_callbacks(first.id) == [URL_A, URL_B]


async def test_attempts_listing_and_redelivery(store: Store) -> None:
    st = backend(store)
    for n in range(3):
        await st.job_insert_with_callbacks(NewJob(kind=f"k{n}"), [URL_A], OPTIONS, T0)
        running = (await claim(st, kinds=(f"k{n}",)))[0]
        await finish(st, running, OutcomeKind.SUCCEEDED)
    newest, middle, _oldest = await st.webhook_delivery_list(DeliveryFilter())
    assert [d.id for d in await st.webhook_delivery_list(DeliveryFilter(before_id=newest.id, limit=1))] == [
        middle.id
    ]
    assert newest.job_id is not None
    with pytest.raises(InvalidJobState, match="still being delivered"):
        await st.webhook_redeliver(newest.id, at(1))
    claimed = await claim(st, now=at(1), limit=3, kinds=(WEBHOOK_KIND,))
    (sending,) = [j for j in claimed if j.id == newest.job_id]
    await st.webhook_attempt_record(
        newest.id, sending.id, DeliveryStatus.PENDING, 500, "HTTP 500", 12.5, at(1)
    )
    await st.webhook_attempt_record(
        newest.id, sending.id, DeliveryStatus.FAILED, 410, "HTTP 410 Gone", 3.0, at(2)
    )
    assert await finish(st, sending, OutcomeKind.FAILED, now=at(2), error="HTTP 410 Gone")
    failed = await st.webhook_delivery_get(newest.id)
    assert failed is not None
    assert (failed.status, failed.attempts, failed.last_status_code, failed.last_error) == (
        DeliveryStatus.FAILED,
        2,
        410,
        "HTTP 410 Gone",
    )
    assert failed.last_attempt_at == at(2)
    assert [d.id for d in await st.webhook_delivery_list(DeliveryFilter(status=DeliveryStatus.FAILED))] == [
        newest.id
    ]
    again = await st.webhook_redeliver(newest.id, at(3))
    assert (again.status, again.message_id, again.body) == (
        DeliveryStatus.PENDING,
        newest.message_id,
        newest.body,
    )
    assert again.job_id not in (None, newest.job_id)
    assert again.job_id is not None
    redo = await st.job_get(again.job_id)
    assert redo is not None
    assert (redo.kind, redo.queue, redo.state, redo.payload) == (
        WEBHOOK_KIND,
        "hooks",
        JobState.QUEUED,
        {"delivery_id": newest.id},
    )
    await st.webhook_attempt_record(newest.id, redo.id, DeliveryStatus.DELIVERED, 204, None, 1.0, at(4))
    done = await st.webhook_delivery_get(newest.id)
    assert done is not None
    assert (done.status, done.attempts, done.delivered_at, done.last_error) == (
        DeliveryStatus.DELIVERED,
        3,
        at(4),
        None,
    )
    attempts = await st.webhook_attempts(newest.id)
    assert [(a.n, a.job_id, a.status_code) for a in attempts] == [
        (1, sending.id, 500),
        (2, sending.id, 410),
        (3, redo.id, 204),
    ]
    with pytest.raises(DeliveryNotFound):
        await st.webhook_redeliver(10**9, at(5))
    assert await st.webhook_delivery_get(10**9) is None


async def test_a_settled_document_is_announced_to_its_collection_and_its_callbacks(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    assert [e.url for e in await ix.webhook_endpoints_set("c", [URL_A], OPTIONS, T0)] == [URL_A]
    await ix.webhook_endpoints_set("other", [URL_B], OPTIONS, T0)
    await ix.document_register(DocumentRef("c", "d1", "/a.txt"), T0)
    await ix.document_callbacks_add("c", "d1", [URL_B], OPTIONS)
    _, ok = await running_job(ix)
    assert await ix.document_commit(write("d1", chunk("d1", 0, "alpha", V1)), ok, at(1))
    indexed = await ix.webhook_delivery_list(DeliveryFilter(collection="c"))
    assert sorted((d.url, d.event) for d in indexed) == [
        (URL_A, "document.indexed"),
        (URL_B, "document.indexed"),
    ]
    body = json.loads(indexed[0].body)
    assert body["data"] == {
        "collection": "c",
        "document_id": "d1",
        "status": "indexed",
        "version": 1,
        "chunk_count": 1,
        "title": "Title d1",
        "error": None,
    }
    # the request's callbacks were one-shot; the collection's endpoint stays
    job, _ = await running_job(ix)
    failed = outcome(job, OutcomeKind.FAILED, error="encrypted PDF")
    assert await ix.document_mark("c", "d1", DocumentStatus.FAILED, "encrypted PDF", failed, at(2))
    latest = await ix.webhook_delivery_list(DeliveryFilter(event="document.failed"))
    assert [(d.url, json.loads(d.body)["data"]["error"]) for d in latest] == [(URL_A, "encrypted PDF")]
    assert [e.url for e in await ix.webhook_endpoints_list("c")] == [URL_A]
    assert await ix.webhook_endpoints_set("c", [], OPTIONS, T0) == []
    assert [e.collection for e in await ix.webhook_endpoints_list(None)] == ["other"]


async def test_finished_deliveries_are_pruned_past_their_retention_with_their_attempts(store: Store) -> None:
    st = backend(store)
    for n in range(3):
        await st.job_insert_with_callbacks(NewJob(kind=f"k{n}"), [URL_A], OPTIONS, T0)
        await finish(st, (await claim(st, kinds=(f"k{n}",)))[0], OutcomeKind.SUCCEEDED)
    newest, middle, oldest = await st.webhook_delivery_list(DeliveryFilter())
    jobs = {j.id: j for j in await claim(st, now=at(1), limit=3, kinds=(WEBHOOK_KIND,))}
    for delivery, status, when in (
        (oldest, DeliveryStatus.DELIVERED, 10),
        (middle, DeliveryStatus.FAILED, 10),
    ):
        assert delivery.job_id is not None
        await st.webhook_attempt_record(delivery.id, delivery.job_id, status, 200, None, 1.0, at(when))
        await finish(st, jobs[delivery.job_id], OutcomeKind.SUCCEEDED, now=at(when))
    # `newest` is still pending (its job runs): never pruned, however old
    assert await st.webhook_prune(DeliveryStatus.PENDING, at(10_000), limit=10) == 0
    assert (
        await st.webhook_prune(DeliveryStatus.DELIVERED, at(10), limit=10) == 0
    )  # not before its last activity
    assert await st.webhook_prune(DeliveryStatus.DELIVERED, at(11), limit=10) == 1
    assert await st.webhook_delivery_get(oldest.id) is None
    assert await st.webhook_attempts(oldest.id) == []  # its attempts went with it
    assert [d.id for d in await st.webhook_delivery_list(DeliveryFilter())] == [newest.id, middle.id]
    assert await st.webhook_prune(DeliveryStatus.FAILED, at(11), limit=10) == 1
    assert [d.id for d in await st.webhook_delivery_list(DeliveryFilter())] == [newest.id]
