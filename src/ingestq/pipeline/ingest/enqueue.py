"""Queueing documents for ingestion: mark them pending and insert one job each (deduplicated per
document), and the backfill of a collection whose model or chunker settings changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ingestq.clock import Clock
from ingestq.errors import ConfigError, PermanentError
from ingestq.model.document import Document, DocumentRef
from ingestq.model.job import Job, NewJob
from ingestq.pipeline.ingest.kinds import INGEST_KIND, INGEST_MAX_ATTEMPTS, INGEST_QUEUE
from ingestq.store.base import IndexStore, Store
from ingestq.tasks.task import JobContext


class IngestStore(Store, IndexStore, Protocol):
    """A store that holds both the queue and the index (both backends do)."""


def index_store(store: Store) -> IngestStore:
    if not isinstance(store, IndexStore):
        raise ConfigError(f"the {store.backend} store does not implement documents and search yet")
    return store


def document_dedupe_key(collection: str, document_id: str) -> str:
    return f"ingest:{collection}:{document_id}"


def ingest_job(doc: Document | DocumentRef, priority: int = 0, *, force: bool = False) -> NewJob:
    """`force` rebuilds the document even when its bytes, model and settings match the served version
    (`reprocess`: the parser itself may have changed)."""
    payload: dict[str, Any] = {"collection": doc.collection, "document_id": doc.id}
    if force:
        payload["force"] = True
    return NewJob(
        kind=INGEST_KIND,
        payload=payload,
        queue=INGEST_QUEUE,
        priority=priority,
        max_attempts=INGEST_MAX_ATTEMPTS,
        dedupe_key=document_dedupe_key(doc.collection, doc.id),
        document_id=doc.id,
    )


async def register_and_enqueue(
    store: IngestStore,
    refs: Sequence[DocumentRef],
    now: Any,
    *,
    force: bool = False,
    before_enqueue: Callable[[Sequence[Document]], Awaitable[None]] | None = None,
) -> list[tuple[Document, Job]]:
    """Mark the documents pending and queue one ingestion job each, in bulk. A document whose job is
    still queued or running keeps that job (dedupe key): ingesting twice does not queue twice.
    `before_enqueue` runs between the two (a request's webhook callbacks are registered there, so that
    no worker can settle a document before they exist)."""
    if before_enqueue is None:  # one transaction: no document is left pending without its job
        return await store.document_enqueue(refs, [ingest_job(ref, force=force) for ref in refs], now)
    docs = [await store.document_register(ref, now) for ref in refs]
    if docs:
        await before_enqueue(docs)
    jobs = await store.job_insert_many([ingest_job(d, force=force) for d in docs], now) if docs else []
    return list(zip(docs, jobs, strict=True))


async def backfill_collection(
    store: IngestStore,
    collection: str,
    model_id: str,
    settings_hash: str,
    clock: Clock,
    ctx: JobContext | None = None,
    page: int = 500,
) -> list[Job]:
    """Queue re-ingestion of every indexed document built with another model or chunker settings.
    Registered documents turn pending, so each page asks for the next ones. Returns the jobs."""
    existing = await store.collection_get(collection)
    if existing is not None and existing.model_id != model_id:
        raise PermanentError(
            f"collection {collection!r} holds {existing.model_id} vectors; re-embedding it with "
            f"{model_id} needs a new collection (vectors of two models cannot share one index)"
        )
    jobs: list[Job] = []
    while True:
        stale = await store.documents_stale(collection, model_id, settings_hash, page)
        if not stale:
            return jobs
        refs = [DocumentRef(d.collection, d.id, d.source, d.blob_id, d.metadata) for d in stale]
        jobs += [job for _, job in await register_and_enqueue(store, refs, clock.now())]
        if ctx is not None:
            await ctx.progress("queue", len(jobs), None)
            ctx.raise_if_cancelled()
