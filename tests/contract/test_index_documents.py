"""Documents and versions: registration, the fenced atomic commit, marks, delete, listing, staleness."""

from __future__ import annotations

import pytest
from contract_helpers import LEASE, T0, at, claim, claim_one, insert, outcome
from index_helpers import DIM, MODEL, chunk, commit, index_of, running_job, write

from ingestq.errors import QueueFull, StoreError
from ingestq.model.document import DocumentFilter, DocumentRef, DocumentStatus, SearchQuery
from ingestq.model.job import JobFilter, JobState, NewJob, OutcomeKind, QueueConfig
from ingestq.pipeline.ingest.enqueue import register_and_enqueue
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.store import Store
from ingestq.store.base import Backend
from ingestq.store.common import CANCELLED_BEFORE_INDEXED, LEASE_LOST

V1 = [1.0, 0.0, 0.0, 0.0]
V2 = [0.0, 1.0, 0.0, 0.0]


async def test_register_creates_pending_and_reregister_keeps_one_row(store: Store) -> None:
    ix = await index_of(store)
    doc = await ix.document_register(DocumentRef("c", "d1", "/a.txt", metadata={"lang": "en"}), T0)
    assert (doc.status, doc.version, doc.source, doc.metadata) == (
        DocumentStatus.PENDING,
        0,
        "/a.txt",
        {"lang": "en"},
    )
    assert doc.created_at == T0
    again = await ix.document_register(DocumentRef("c", "d1", "/b.txt"), at(5))
    assert again.source == "/b.txt"
    assert again.updated_at == at(5)
    assert (await ix.document_counts("c"))[DocumentStatus.PENDING] == 1


async def test_commit_indexes_and_finishes_the_job(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    await ix.document_register(DocumentRef("c", "d1", "/a.txt"), T0)
    job, o = await running_job(ix)
    w = write(
        "d1", chunk("d1", 0, "alpha beta", V1, page=3, heading_path=("A", "B")), chunk("d1", 1, "gamma", V2)
    )
    assert await ix.document_commit(w, o, at(1))
    doc = await ix.document_get("c", "d1")
    assert doc is not None
    assert doc.status is DocumentStatus.INDEXED
    assert (doc.version, doc.chunk_count, doc.title, doc.model_id, doc.settings_hash) == (
        1,
        2,
        "Title d1",
        MODEL,
        "s1",
    )
    assert doc.error is None
    finished = await ix.job_get(job.id)
    assert finished is not None
    assert finished.state is JobState.SUCCEEDED
    chunks = await ix.document_chunks("c", "d1", with_vectors=True)
    assert [c.id for c in chunks] == ["d1:0", "d1:1"]
    assert chunks[0].heading_path == ("A", "B")
    assert chunks[0].page == 3
    assert chunks[0].embedding == V1
    assert (await ix.document_chunks("c", "d1"))[0].embedding is None
    assert await ix.document_token_count("c", "d1") == sum(c.token_count for c in chunks) > 0
    assert await ix.document_token_count("c", "nope") == 0


async def test_commit_replaces_the_previous_version(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    assert await commit(ix, write("d1", chunk("d1", 0, "old words here", V1), chunk("d1", 1, "old two", V2)))
    assert await commit(ix, write("d1", chunk("d1", 0, "fresh text", V2)))
    doc = await ix.document_get("c", "d1")
    assert doc is not None
    assert (doc.version, doc.chunk_count) == (2, 1)
    assert [c.body for c in await ix.document_chunks("c", "d1")] == ["fresh text"]
    hits = await ix.search_vector(SearchQuery("c", k=10, vector=V1))
    assert [h.text for h in hits] == ["fresh text"]
    assert await ix.search_text(SearchQuery("c", text="old")) == []
    assert [h.chunk_id for h in await ix.search_text(SearchQuery("c", text="fresh"))] == ["d1:0"]


async def test_recommit_of_the_same_job_is_fenced(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    _, o = await running_job(ix)
    assert await ix.document_commit(write("d1", chunk("d1", 0, "first", V1)), o, at(1))
    assert not await ix.document_commit(write("d1", chunk("d1", 0, "second", V2)), o, at(2))
    doc = await ix.document_get("c", "d1")
    assert doc is not None
    assert doc.version == 1
    assert [c.body for c in await ix.document_chunks("c", "d1")] == ["first"]


async def test_stale_owner_cannot_commit_and_writes_nothing(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    await ix.document_register(DocumentRef("c", "d1", "/a.txt"), T0)
    await insert(ix, T0)
    first = await claim_one(ix, T0, worker="w1", lease=5)
    assert await ix.job_rescue_stale(at(10)) == [first.id]
    second = await claim_one(ix, at(11), worker="w2")
    stale = outcome(first, OutcomeKind.SUCCEEDED)
    assert not await ix.document_commit(write("d1", chunk("d1", 0, "stale", V1)), stale, at(12))
    doc = await ix.document_get("c", "d1")
    assert doc is not None
    assert (doc.status, doc.version, doc.chunk_count) == (DocumentStatus.PENDING, 0, 0)
    assert await ix.document_chunks("c", "d1") == []
    assert await ix.search_vector(SearchQuery("c", vector=V1)) == []
    assert await ix.search_text(SearchQuery("c", text="stale")) == []
    running = await ix.job_get(second.id)
    assert running is not None
    assert running.state is JobState.RUNNING
    assert running.lease_owner == "w2"
    assert await ix.document_commit(
        write("d1", chunk("d1", 0, "current", V1)), outcome(second, OutcomeKind.SUCCEEDED), at(13)
    )


async def test_mark_is_fenced_and_keeps_chunks(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    assert await commit(ix, write("d1", chunk("d1", 0, "kept", V1)))
    job, _ = await running_job(ix)
    failed = outcome(job, OutcomeKind.FAILED, error="encrypted PDF")
    assert await ix.document_mark("c", "d1", DocumentStatus.FAILED, "encrypted PDF", failed, at(1))
    assert not await ix.document_mark("c", "d1", DocumentStatus.QUARANTINED, "again", failed, at(2))
    doc = await ix.document_get("c", "d1")
    assert doc is not None
    assert (doc.status, doc.error, doc.version) == (
        DocumentStatus.FAILED,
        "encrypted PDF",
        1,
    )
    gone = await ix.job_get(job.id)
    assert gone is not None
    assert gone.state is JobState.FAILED
    assert [c.body for c in await ix.document_chunks("c", "d1")] == ["kept"]
    assert await ix.document_mark("c", "d1", DocumentStatus.PENDING, None, None, at(3))
    assert (await ix.document_counts("c"))[DocumentStatus.PENDING] == 1


async def test_delete_cascades_to_chunks_vectors_and_text(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    assert await commit(ix, write("d1", chunk("d1", 0, "doomed words", V1)))
    assert await commit(ix, write("d2", chunk("d2", 0, "survivor", V2)))
    assert await ix.document_delete("c", "d1")
    assert not await ix.document_delete("c", "d1")
    assert await ix.document_get("c", "d1") is None
    assert await ix.document_chunks("c", "d1") == []
    assert [h.document_id for h in await ix.search_vector(SearchQuery("c", k=5, vector=V1))] == ["d2"]
    assert await ix.search_text(SearchQuery("c", text="doomed")) == []


async def test_list_is_keyset_paginated_and_counts_by_status(store: Store) -> None:
    ix = await index_of(store)
    for name in ["b", "a", "e", "d", "c"]:
        await ix.document_register(DocumentRef("c1", name, f"/{name}"), T0)
    await ix.document_register(DocumentRef("c2", "z", "/z"), T0)
    await ix.document_mark("c1", "d", DocumentStatus.FAILED, "bad", None, T0)
    page1 = await ix.document_list(DocumentFilter(collection="c1", limit=2))
    page2 = await ix.document_list(DocumentFilter(collection="c1", after_id=page1[-1].id, limit=10))
    assert [d.id for d in page1 + page2] == ["a", "b", "c", "d", "e"]
    failed = await ix.document_list(DocumentFilter(status=DocumentStatus.FAILED))
    assert [(d.collection, d.id, d.error) for d in failed] == [("c1", "d", "bad")]
    assert len(await ix.document_list(DocumentFilter())) == 6
    counts = await ix.document_counts("c1")
    assert counts[DocumentStatus.PENDING] == 4
    assert counts[DocumentStatus.FAILED] == 1
    assert counts[DocumentStatus.INDEXED] == 0
    assert sum((await ix.document_counts(None)).values()) == 6


async def test_stale_documents_after_a_model_or_settings_change(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    assert await commit(ix, write("d1", chunk("d1", 0, "one", V1), settings_hash="s1"))
    assert await commit(ix, write("d2", chunk("d2", 0, "two", V1), settings_hash="s2"))
    assert [d.id for d in await ix.documents_stale("c", MODEL, "s2", 10)] == ["d1"]
    assert [d.id for d in await ix.documents_stale("c", "other-model", "s2", 10)] == ["d1", "d2"]
    assert await ix.documents_stale("c", MODEL, "s1", 10) != []
    assert len(await ix.documents_stale("c", "other-model", "s1", 1)) == 1


async def test_commit_refuses_another_model_or_dimension_and_writes_nothing(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    job, o = await running_job(ix)
    with pytest.raises(StoreError, match="embedded with 'test-model'"):
        await ix.document_commit(write("d1", chunk("d1", 0, "x", V1), model_id="other"), o, at(1))
    with pytest.raises(ValueError, match="needs 4 dimensions, got 3"):
        await ix.document_commit(write("d1", chunk("d1", 0, "x", [1.0, 0.0, 0.0])), o, at(1))
    with pytest.raises(StoreError, match="does not exist"):
        await ix.document_commit(write("d1", chunk("d1", 0, "x", V1), collection="nope"), o, at(1))
    with pytest.raises(ValueError, match="has 4"):
        await ix.search_vector(SearchQuery("c", vector=[1.0, 0.0]))
    assert await ix.document_get("c", "d1") is None
    still = await ix.job_get(job.id)
    assert still is not None
    assert still.state is JobState.RUNNING
    assert await ix.document_commit(write("d1", chunk("d1", 0, "x", V1)), o, at(2))


async def _state(ix: Backend, doc: str) -> tuple[DocumentStatus, str | None]:
    found = await ix.document_get("c", doc)
    assert found is not None
    return found.status, found.error


async def test_any_job_carrying_a_document_id_settles_its_document(store: Store) -> None:
    """The store settles documents by the job's document_id, whatever its kind (it does not know which
    kinds ingest): cancelled while queued, failed by the lease rescue, made pending again by a retry."""
    ix = await index_of(store)
    for doc in ("d1", "d2", "d3"):
        await ix.document_register(DocumentRef("c", doc, f"/{doc}.txt"), T0)
    payload = {"collection": "c"}
    queued = await insert(ix, T0, kind="app.reindex", payload=payload, document_id="d1")
    unrelated = await insert(ix, T0, kind="app.reindex", payload=payload)  # no document_id
    assert (await ix.job_cancel(queued.id, at(1))).state is JobState.CANCELLED
    assert (await ix.job_cancel(unrelated.id, at(1))).state is JobState.CANCELLED
    assert await _state(ix, "d1") == (DocumentStatus.FAILED, CANCELLED_BEFORE_INDEXED)
    assert (await ix.document_counts("c"))[DocumentStatus.PENDING] == 2  # d2, d3 untouched

    await ix.job_retry(queued.id, at(2))
    assert await _state(ix, "d1") == (DocumentStatus.PENDING, None)

    lost = await insert(ix, at(3), kind="app.summarise", payload=payload, document_id="d2", max_attempts=1)
    assert lost.id in {j.id for j in await claim(ix, at(3), limit=5)}
    assert lost.id in await ix.job_rescue_stale(at(3 + LEASE + 1))
    assert await _state(ix, "d2") == (DocumentStatus.FAILED, LEASE_LOST)
    assert await _state(ix, "d3") == (DocumentStatus.PENDING, None)


async def test_document_enqueue_registers_and_queues_in_one_go(store: Store) -> None:
    ix = await index_of(store)
    refs = [DocumentRef("c", f"d{i}", f"/{i}.txt") for i in range(3)]
    jobs = [
        NewJob("k", {"document_id": r.id}, queue="docs", dedupe_key=f"c/{r.id}", document_id=r.id)
        for r in refs
    ]
    pairs = await ix.document_enqueue(refs, jobs, T0)
    assert [(d.id, d.status, j.document_id, j.state) for d, j in pairs] == [
        (f"d{i}", DocumentStatus.PENDING, f"d{i}", JobState.QUEUED) for i in range(3)
    ]
    # again while the jobs are queued: the same jobs come back (their dedupe keys), no new ones
    again = await ix.document_enqueue(refs[:1], jobs[:1], at(1))
    assert again[0][1].id == pairs[0][1].id
    assert len(await store.job_list(JobFilter(queues=("docs",)))) == 3
    with pytest.raises(ValueError, match="3 documents but 2 jobs"):
        await ix.document_enqueue(refs, jobs[:2], T0)


async def test_a_full_queue_leaves_no_document_pending_without_its_job(store: Store) -> None:
    """The upload path registers a document and queues its job in one transaction: when the queue is
    full, the upload is refused (429) with nothing half done. Registering first and queueing after left
    the document pending forever, with no job to settle it."""
    ix = await index_of(store)
    await store.queue_configure(QueueConfig(INGEST_QUEUE, max_depth=1))
    await register_and_enqueue(ix, [DocumentRef("c", "first", "/first.txt")], T0)
    with pytest.raises(QueueFull):
        await register_and_enqueue(ix, [DocumentRef("c", "second", "/second.txt")], at(1))
    assert await ix.document_get("c", "second") is None
    assert (await ix.document_counts("c"))[DocumentStatus.PENDING] == 1
