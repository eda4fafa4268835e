"""A document is pending only while its ingestion job is queued or running, on every backend: a job
cancelled while queued, or ended by the lease rescue (its worker died), settles the document in the same
transaction (indexed again when a version is still served, failed with a reason otherwise), and a
person's retry makes it pending again. The running-cancel path (the handler's finalizer) is covered in
test_ingest.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import DocumentStatus
from ingestq.model.job import ClaimRequest, JobState
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.store.base import IndexStore
from ingestq.store.common import CANCELLED_BEFORE_INDEXED
from ingestq.worker import Worker, WorkerConfig


async def drain(client: Client, settings: Settings) -> None:
    async with IngestRuntime(client.store, settings) as runtime:
        worker = Worker(client.store, runtime.registry(), WorkerConfig(concurrency=2))
        await asyncio.wait_for(worker.run(drain=True), 120)


@pytest.fixture
def fake_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"embedder": "fake", "embedder_dimension": 16})


async def test_cancelling_a_queued_ingestion_settles_its_document(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "note.md"
    path.write_text("# Note\n\nA short note about lighthouses and their keepers.\n")
    docs = Documents(client, fake_settings)

    # never indexed: failed with the reason, and a later ingest works
    (first,) = await docs.ingest([path])
    assert (await docs.get(first.document.id)).status is DocumentStatus.PENDING
    assert (await client.cancel(first.job.id)).state is JobState.CANCELLED
    doc = await docs.get(first.document.id)
    assert (doc.status, doc.error, doc.version) == (DocumentStatus.FAILED, CANCELLED_BEFORE_INDEXED, 0)
    counts = await docs.counts()
    assert (counts[DocumentStatus.FAILED], counts[DocumentStatus.PENDING]) == (1, 0)

    (second,) = await docs.ingest([path])
    assert second.job.id != first.job.id  # the cancelled job holds no dedupe key
    assert (await docs.get(first.document.id)).status is DocumentStatus.PENDING
    await drain(client, fake_settings)
    doc = await docs.get(first.document.id)
    assert (doc.status, doc.error, doc.version) == (DocumentStatus.INDEXED, None, 1)

    # indexed before: a cancelled re-ingest goes back to indexed, and its chunks are still served
    path.write_text("# Note\n\nA rewritten note about harbours.\n")
    (third,) = await docs.ingest([path])
    await client.cancel(third.job.id)
    doc = await docs.get(first.document.id)
    assert (doc.status, doc.error, doc.version) == (DocumentStatus.INDEXED, None, 1)
    hits = await docs.search("lighthouses keepers", k=1, mode="text")
    assert [h.document_id for h in hits] == [doc.id]

    # a person's retry of the cancelled job: pending again, then the new text is indexed
    await client.retry(third.job.id)
    assert (await docs.get(doc.id)).status is DocumentStatus.PENDING
    await drain(client, fake_settings)
    doc = await docs.get(doc.id)
    assert (doc.status, doc.version) == (DocumentStatus.INDEXED, 2)
    assert [h.document_id for h in await docs.search("harbours", k=1, mode="text")] == [doc.id]


async def test_an_ingestion_whose_worker_died_does_not_stay_pending(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    """The lease rescue ends the jobs of dead workers: cancelled when a cancel was requested, failed when
    no attempt is left. Neither passes through the handler's finalizer."""
    store = client.store
    assert isinstance(store, IndexStore)
    paths = [tmp_path / f"{name}.md" for name in ("cancelled", "exhausted", "retried")]
    for p in paths:
        p.write_text(f"# {p.stem}\n\nSome text.\n")
    docs = Documents(client, fake_settings)
    items = await docs.ingest(paths)
    cancelled, exhausted, retried = items
    now = client.clock.now()

    # a worker claims all three, then dies (no heartbeat, no outcome); one was asked to cancel meanwhile
    dead = ClaimRequest(worker_id="dead-worker", limit=10, lease_seconds=1.0, queues=(INGEST_QUEUE,))
    assert len(await store.job_claim(dead, now)) == 3
    await client.cancel(cancelled.job.id)  # running: only flagged
    assert (await docs.get(cancelled.document.id)).status is DocumentStatus.PENDING
    later = now + timedelta(seconds=5)
    for _ in range(2):  # exhaust the attempts of `exhausted` (and `retried`): claimed and lost again
        await store.job_rescue_stale(later)
        claim = ClaimRequest(worker_id="dead-worker", limit=10, lease_seconds=1.0, queues=(INGEST_QUEUE,))
        await store.job_claim(claim, later)
        later += timedelta(seconds=5)
    await store.job_rescue_stale(later)

    assert (await client.get(cancelled.job.id)).state is JobState.CANCELLED
    doc = await docs.get(cancelled.document.id)
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, CANCELLED_BEFORE_INDEXED)

    for item in (exhausted, retried):
        job = await client.get(item.job.id)
        assert (job.state, job.attempt) == (JobState.FAILED, 3)
        doc = await docs.get(item.document.id)
        assert doc.status is DocumentStatus.FAILED
        assert doc.error == job.last_error
        assert doc.error is not None
        assert "lease expired" in doc.error

    await client.retry(retried.job.id)
    assert (await docs.get(retried.document.id)).status is DocumentStatus.PENDING
    await drain(client, fake_settings)
    assert (await docs.get(retried.document.id)).status is DocumentStatus.INDEXED
    assert (await docs.get(exhausted.document.id)).status is DocumentStatus.FAILED
