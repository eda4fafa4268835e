"""The documents API, for the CLI and the HTTP API: ingest, search, list/show/reprocess/delete, backfill.

    async with Client.connect(settings) as client:
        docs = Documents(client)
        batch = await docs.ingest(["docs/", "https://example.org/page.html"], collection="kb")
        hits = await docs.search("how do retries work", k=5, collection="kb")

Ingest registers the documents (pending) and queues one `ingestq.ingest` job each; workers do the work.
Search embeds the query with the configured embedder and refuses a collection built with another model.
Hybrid search fuses the vector and full-text rankings by reciprocal rank (k=60, the constant of
Cormack et al. 2009): robust without calibrating cosine similarity against bm25 scores.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ingestq.client.client import Client
from ingestq.errors import IngestqError
from ingestq.model.document import (
    ChunkRecord,
    Document,
    DocumentFilter,
    DocumentRef,
    DocumentStatus,
    Hit,
    SearchQuery,
)
from ingestq.model.job import Job, JobState, NewJob
from ingestq.pipeline.config import PipelineConfig, build_embedder, pipeline_config
from ingestq.pipeline.embed.base import Embedder
from ingestq.pipeline.ingest.enqueue import (
    IngestStore,
    backfill_collection,
    index_store,
    register_and_enqueue,
)
from ingestq.pipeline.ingest.kinds import BACKFILL_KIND, INGEST_QUEUE
from ingestq.pipeline.sources import SourceTooLarge, expand_paths, is_url
from ingestq.settings import Settings

SearchMode = Literal["hybrid", "vector", "text"]
_Chunks = list[ChunkRecord]  # `list` is a method name below
_Jobs = list[Job]
RRF_K = 60


class DocumentNotFound(IngestqError):
    def __init__(self, collection: str, document_id: str) -> None:
        super().__init__(f"document {document_id!r} not found in collection {collection!r}")


class ModelMismatch(IngestqError):
    """A query embedded with another model than the collection's vectors would be meaningless."""


@dataclass(frozen=True, slots=True)
class Ingested:
    document: Document
    job: Job


def fuse(rankings: Sequence[Sequence[Hit]], k: int, rrf_k: int = RRF_K) -> list[Hit]:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (rrf_k + rank), rank from 1."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (rrf_k + rank)
            first.setdefault(hit.chunk_id, hit)
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    return [replace(first[cid], score=scores[cid]) for cid in best]


class Documents:
    def __init__(self, client: Client, settings: Settings | None = None, *, embedder: Embedder | None = None):
        self.client = client
        self.settings = settings or Settings()
        self.store: IngestStore = index_store(client.store)
        self.config: PipelineConfig = pipeline_config(self.settings)
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.config.embedder)
        return self._embedder

    def _collection(self, collection: str | None) -> str:
        return collection or self.settings.default_collection

    # --- ingest ---------------------------------------------------------------------------------------

    async def ingest(
        self,
        sources: Sequence[str | Path] = (),
        *,
        uploads: Sequence[tuple[str, bytes | BinaryIO]] = (),
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        before_enqueue: Callable[[Sequence[Document]], Awaitable[None]] | None = None,
    ) -> list[Ingested]:
        """Register files, directories (recursive, globs), URLs and uploaded bytes `(name, data)`, and
        queue their ingestion in one go. An upload given as a file (read from its start, e.g. a spooled
        temporary file) is streamed into the store, never held in memory whole. A file's id is its
        absolute path, a URL's the URL, an upload's `name@sha256-prefix`. `before_enqueue(documents)`
        runs once they are registered, before their jobs are queued (e.g.
        `Webhooks.add_document_callbacks`). Raises SourceError (one line) for a path that does not
        exist, PathRefused for one outside `ingest_path_roots` (nothing is registered then)."""
        name = self._collection(collection)
        meta = dict(metadata or {})
        urls = [str(s) for s in sources if is_url(str(s))]
        paths = [s for s in sources if not is_url(str(s))]
        roots = self.settings.ingest_path_roots
        files = await asyncio.to_thread(expand_paths, paths, include, exclude, roots) if paths else []
        refs = [DocumentRef(name, str(p), str(p), None, meta) for p in files]
        refs += [DocumentRef(name, url, url, None, meta) for url in urls]
        now = self.client.clock.now()
        for upload_name, data in uploads:
            size = len(data) if isinstance(data, bytes) else data.seek(0, io.SEEK_END)
            if size > self.settings.upload_max_bytes:
                raise SourceTooLarge(
                    f"{upload_name}: {size} bytes, over the {self.settings.upload_max_bytes} byte limit"
                )
            if isinstance(data, bytes):
                blob = await self.store.blob_put(data, now)
            else:
                blob = await self.store.blob_put_file(data, now)
            doc_id = f"{upload_name}@{blob[:12]}"  # the blob id is the content's sha256
            refs.append(DocumentRef(name, doc_id, f"upload:{upload_name}", blob, meta))
        pairs = await register_and_enqueue(self.store, refs, now, before_enqueue=before_enqueue)
        return [Ingested(doc, job) for doc, job in pairs]

    # --- search ---------------------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        k: int = 10,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        name = self._collection(collection)
        found = await self.store.collection_get(name)
        if found is None:
            raise IngestqError(f"collection {name!r} does not exist (ingest something into it first)")
        rankings: list[list[Hit]] = []
        depth = max(k * 4, 20)  # fusion needs more than k candidates from each side
        if mode in ("hybrid", "vector"):
            if found.model_id != self.embedder.model_id:
                raise ModelMismatch(
                    f"collection {name!r} was embedded with {found.model_id}; this query would be "
                    f"embedded with {self.embedder.model_id} (set INGESTQ_EMBEDDER to match)"
                )
            (vector,) = await self.embedder.embed([query])
            rankings.append(
                await self.store.search_vector(SearchQuery(name, depth, vector, None, dict(metadata or {})))
            )
        if mode in ("hybrid", "text"):
            rankings.append(
                await self.store.search_text(SearchQuery(name, depth, None, query, dict(metadata or {})))
            )
        if mode != "hybrid":
            return rankings[0][:k]
        return fuse(rankings, k)

    # --- documents ------------------------------------------------------------------------------------

    async def list(
        self,
        collection: str | None = None,
        status: DocumentStatus | None = None,
        after_id: str | None = None,
        limit: int = 100,
        after_collection: str | None = None,
    ) -> list[Document]:
        """Keyset pages by (id, collection): pass the last row's id, and its collection when listing
        every collection (two collections may hold the same id)."""
        return await self.store.document_list(
            DocumentFilter(collection, status, after_id, limit, after_collection)
        )

    async def get(self, document_id: str, collection: str | None = None) -> Document:
        name = self._collection(collection)
        doc = await self.store.document_get(name, document_id)
        if doc is None:
            raise DocumentNotFound(name, document_id)
        return doc

    async def chunks(self, document_id: str, collection: str | None = None) -> _Chunks:
        name = self._collection(collection)
        await self.get(document_id, name)
        return await self.store.document_chunks(name, document_id)

    async def counts(self, collection: str | None = None) -> dict[DocumentStatus, int]:
        return await self.store.document_counts(collection)

    async def reprocess(self, document_ids: Sequence[str], collection: str | None = None) -> _Jobs:
        """Queue the documents again (same source); their current version stays searchable meanwhile."""
        name = self._collection(collection)
        refs = []
        for document_id in document_ids:
            d = await self.get(document_id, name)
            refs.append(DocumentRef(d.collection, d.id, d.source, d.blob_id, d.metadata))
        pairs = await register_and_enqueue(self.store, refs, self.client.clock.now(), force=True)
        return [job for _, job in pairs]

    async def delete(self, document_id: str, collection: str | None = None) -> None:
        name = self._collection(collection)
        if not await self.store.document_delete(name, document_id):
            raise DocumentNotFound(name, document_id)

    async def backfill(self, collection: str | None = None) -> _Jobs:
        """Queue re-ingestion of the collection's documents built with another model or chunker
        settings; returns their jobs."""
        return await backfill_collection(
            self.store,
            self._collection(collection),
            self.embedder.model_id,
            self.config.fingerprint(),
            self.client.clock,
        )

    async def enqueue_backfill(self, collection: str | None = None) -> Job:
        """The same, as a job a worker runs (for the HTTP API)."""
        name = self._collection(collection)
        job = NewJob(
            kind=BACKFILL_KIND,
            payload={"collection": name},
            queue=INGEST_QUEUE,
            dedupe_key=f"backfill:{name}",
        )
        (inserted,) = await self.store.job_insert_many([job], self.client.clock.now())
        return inserted

    async def summarise(self, jobs: Sequence[Job]) -> BatchSummary:
        """What became of a batch of ingestion jobs and their documents (read once they finished)."""
        summary = BatchSummary(total=len(jobs))
        for job in jobs:
            result = job.result if isinstance(job.result, dict) else {}
            summary.chunks += int(result.get("chunks", 0) or 0)
            summary.embedded += int(result.get("embedded", 0) or 0)
            summary.reused += int(result.get("reused", 0) or 0)
            collection = str(job.payload.get("collection", ""))
            document_id = str(job.payload.get("document_id", job.document_id or ""))
            doc = await self.store.document_get(collection, document_id)
            if job.state is JobState.SUCCEEDED:
                summary.indexed += 1
            elif job.state is JobState.CANCELLED:
                summary.cancelled += 1
            elif doc is not None and doc.status is DocumentStatus.QUARANTINED:
                summary.quarantined.append((document_id, doc.error or job.last_error or ""))
            else:
                reason = (doc.error if doc is not None else None) or job.last_error or "unknown"
                summary.failed.append((document_id, reason))
        return summary


@dataclass
class BatchSummary:
    """A batch of ingestion jobs, once finished: documents indexed, failed (with the reason),
    quarantined, cancelled; chunks written, embedded and reused from the cache."""

    total: int = 0
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "indexed": self.indexed,
            "failed": [{"document": d, "reason": r} for d, r in self.failed],
            "quarantined": [{"document": d, "reason": r} for d, r in self.quarantined],
            "cancelled": self.cancelled,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
        }
