"""Put jobs and documents into the database a served dashboard reads (from the test process)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import ChunkRecord, DocumentRef, IndexWrite
from ingestq.model.job import ClaimRequest, JobState, Outcome, OutcomeKind
from ingestq.pipeline.ingest.enqueue import register_and_enqueue
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.settings import Settings

T = TypeVar("T")


def settings(url: str) -> Settings:
    return Settings(database_url=url, embedder="fake")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a loop of its own in another thread (Playwright's sync API holds this thread's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _enqueue(url: str, kind: str, n: int, queue: str) -> list[int]:
    async with Client.connect(settings(url)) as client:
        jobs = await client.enqueue_many(kind, [{"n": i} for i in range(n)], queue=queue)
        return [job.id for job in jobs]


def enqueue(url: str, kind: str = "demo.work", n: int = 1, queue: str = "default") -> list[int]:
    return _run(_enqueue(url, kind, n, queue))


async def _fail(url: str, kind: str, n: int, queue: str, error: str) -> list[int]:
    async with Client.connect(settings(url)) as client:
        await client.enqueue_many(kind, [{"n": i} for i in range(n)], queue=queue, max_attempts=1)
        now = client.clock.now()
        claimed = await client.store.job_claim(ClaimRequest("seed", n, 60.0, (queue,), (kind,)), now)
        outcomes = [Outcome(j.id, "seed", j.attempt, OutcomeKind.FAILED, error=error) for j in claimed]
        await client.store.job_finish_many(outcomes, now)
        return [j.id for j in claimed]


def fail(
    url: str, kind: str = "demo.work", n: int = 1, queue: str = "mail", error: str = "boom"
) -> list[int]:
    """`n` jobs of `kind` that failed with `error` (one attempt each)."""
    return _run(_fail(url, kind, n, queue, error))


async def _states(url: str, ids: list[int]) -> list[JobState]:
    async with Client.connect(settings(url)) as client:
        return [(await client.get(i)).state for i in ids]


def states(url: str, ids: list[int]) -> list[JobState]:
    return _run(_states(url, ids))


async def _document(url: str, doc_id: str, title: str, body: str, metadata: dict[str, Any]) -> None:
    async with Client.connect(settings(url)) as client:
        docs = Documents(client, settings(url))
        embedder = docs.embedder
        now = client.clock.now()
        ref = DocumentRef("default", doc_id, f"upload:{doc_id}", None, metadata)
        ((_, job),) = await register_and_enqueue(docs.store, [ref], now)
        (claimed,) = await client.store.job_claim(ClaimRequest("seed", 1, 60.0, (INGEST_QUEUE,)), now)
        assert claimed.id == job.id
        (vector,) = await embedder.embed([body])
        await docs.store.collection_ensure("default", embedder.model_id, len(vector), now)
        chunk = ChunkRecord(
            id=f"{doc_id}:0",
            ordinal=0,
            text=body,
            body=body,
            heading_path=(title, "Section <b>2</b>"),
            page=3,
            page_end=3,
            token_count=len(body.split()),
            text_hash=f"h-{doc_id}",
            embedding=vector,
        )
        write = IndexWrite(
            collection="default",
            document_id=doc_id,
            media_type="text/markdown",
            content_hash=f"sha-{doc_id}",
            title=title,
            model_id=embedder.model_id,
            settings_hash=docs.config.fingerprint(),
            chunks=(chunk,),
            metadata=metadata,
        )
        outcome = Outcome(claimed.id, "seed", claimed.attempt, OutcomeKind.SUCCEEDED, result={"chunks": 1})
        assert await docs.store.document_commit(write, outcome, now)


def document(url: str, doc_id: str, title: str, body: str, metadata: dict[str, Any] | None = None) -> None:
    """An indexed document with one chunk, written as a worker would (no worker needed)."""
    _run(_document(url, doc_id, title, body, metadata or {}))
