"""The one bridge between the queue and the pipeline: ingestion as job kinds.

`ingestq.ingest` (one document) runs: load the source → detect its type → parse in the sandboxed
process pool → chunk → embed through the database-backed cache and the shared cross-document batcher
→ commit. Nothing holds a transaction open while parsing or embedding: the handler hands the new
version to the worker as a finalizer (`JobContext.finalize_with`), and the worker's completer writes
chunks, vectors and the job's outcome in one transaction (`IndexStore.document_commit`), fenced like
any outcome, so a worker that lost its lease can neither finish the job nor swap the chunks. A
permanent failure marks the document failed in the same way; a parser that crashed or timed out is
retried and, once the attempts are spent, the document is quarantined (counted apart).

`ingestq.backfill` re-queues the indexed documents of a collection built with another model or other
chunker settings.

The runtime (embedder, chunker, batcher, parser pool) is built lazily from Settings, so a worker that
never sees an ingestion job never loads a model or starts a parser process.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.errors import ConfigError, PermanentError, RetryableError
from ingestq.model.document import (
    BucketRow,
    ChunkRecord,
    Document,
    DocumentRef,
    DocumentStatus,
    IndexWrite,
    Vector,
)
from ingestq.model.job import Job, NewJob, Outcome, OutcomeKind
from ingestq.model.kinds import CANCELLED_BEFORE_INDEXED
from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.config import (
    FakeConfig,
    OllamaConfig,
    OpenAIConfig,
    PipelineConfig,
    SentenceTransformersConfig,
    TokenChunkerConfig,
    build_chunker,
    build_embedder,
)
from ingestq.pipeline.detect import detect
from ingestq.pipeline.embed.base import Embedder
from ingestq.pipeline.embed.batcher import EmbeddingBatcher
from ingestq.pipeline.embed.cache import embed_with_cache
from ingestq.pipeline.embed.ratelimit import BucketRateLimiter, BucketState, RateLimits, reserve
from ingestq.pipeline.errors import NoTextFound
from ingestq.pipeline.ingest.kinds import (
    INGEST_KIND,
    INGEST_MAX_ATTEMPTS,
    INGEST_QUEUE,
    register_ingestion,
)
from ingestq.pipeline.model import ParseOptions, SourceDocument
from ingestq.pipeline.sandbox import ParserPool, SandboxLimits
from ingestq.pipeline.sources import FetchLimits, fetch_url, from_bytes, is_url, read_file
from ingestq.settings import Settings
from ingestq.store.base import IndexStore, Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext

_EMBED_SLICE = 128  # texts per embed call from one job: progress granularity, not the model's batch


class IngestStore(Store, IndexStore, Protocol):
    """A store that holds both the queue and the index (both backends do)."""


def index_store(store: Store) -> IngestStore:
    if not isinstance(store, IndexStore):
        raise ConfigError(f"the {store.backend} store does not implement documents and search yet")
    return store


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The embedder and chunker that `INGESTQ_EMBEDDER` and friends describe."""
    embedder: SentenceTransformersConfig | OllamaConfig | OpenAIConfig | FakeConfig
    extra: dict[str, Any] = {}
    if settings.embedder_model:
        extra["model"] = settings.embedder_model
    if settings.embedder_base_url:
        extra["base_url"] = settings.embedder_base_url
    if settings.embedder_dimension:
        extra["dimension"] = settings.embedder_dimension
    if settings.embedder == "local":
        embedder = SentenceTransformersConfig()
    elif settings.embedder == "fake":
        embedder = FakeConfig(dimension=settings.embedder_dimension or 16)
    elif settings.embedder == "ollama":
        embedder = OllamaConfig(**extra)
    else:
        embedder = OpenAIConfig(api_key=settings.embedder_api_key, **extra)
    chunker = TokenChunkerConfig(
        chunk_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap_tokens
    )
    return PipelineConfig(embedder=embedder, chunker=chunker)


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
    store: IngestStore, refs: Sequence[DocumentRef], now: Any, *, force: bool = False
) -> list[tuple[Document, Job]]:
    """Mark the documents pending and queue one ingestion job each, in bulk. A document whose job is
    still queued or running keeps that job (dedupe key): ingesting twice does not queue twice."""
    docs = [await store.document_register(ref, now) for ref in refs]
    jobs = await store.job_insert_many([ingest_job(d, force=force) for d in docs], now) if docs else []
    return list(zip(docs, jobs, strict=True))


class _DatabaseBuckets:
    """Rate-limit buckets in the database, so a limit holds across every worker."""

    def __init__(self, store: IndexStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def reserve(self, key: str, limits: RateLimits, requests: int, tokens: int) -> float:
        waits: list[float] = []

        def update(row: BucketRow | None) -> BucketRow:
            state = BucketState(row.requests, row.tokens, row.updated_at) if row is not None else None
            new, wait = reserve(state, limits, self._clock.now(), requests, tokens)
            waits.append(wait)  # the store may call `update` again on a serialisation retry: last wins
            return BucketRow(new.requests, new.tokens, new.updated_at)

        await self._store.rate_bucket_update(key, update)
        return waits[-1]


class _StoreCache:
    def __init__(self, store: IndexStore, model_id: str, clock: Clock) -> None:
        self._store, self._model_id, self._clock = store, model_id, clock

    async def get_many(self, keys: Sequence[str]) -> Mapping[str, Vector]:
        return await self._store.embed_cache_get(self._model_id, keys)

    async def put_many(self, items: Mapping[str, Vector]) -> None:
        await self._store.embed_cache_put(self._model_id, dict(items), self._clock.now())


@dataclass(slots=True)
class _Attempt:
    """What one attempt learned, for its finalizer."""

    write: IndexWrite | None = None
    reason: str | None = None
    quarantine: bool = False
    missing: bool = False
    had_version: bool = False
    unchanged: bool = False  # the served version already is these bytes with this model and settings


def _serves(doc: Document, content_hash: str, model_id: str, settings_hash: str) -> bool:
    """Whether the document's served version was built from these bytes with this model and settings."""
    return (
        doc.version > 0
        and doc.content_hash == content_hash
        and doc.model_id == model_id
        and doc.settings_hash == settings_hash
    )


class _Stages:
    """Seconds spent in each pipeline stage of one attempt (reported in the job's result)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage: str | None = None
        self._since = time.monotonic()

    def enter(self, stage: str | None) -> None:
        now = time.monotonic()
        if self._stage is not None:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + now - self._since
        self._stage, self._since = stage, now

    def report(self) -> dict[str, float]:
        self.enter(None)
        return {stage: round(seconds, 4) for stage, seconds in self.seconds.items()}


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class IngestRuntime:
    """Embedder, chunker, batcher and parser pool shared by every ingestion job of one worker."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        config: PipelineConfig | None = None,
        embedder: Embedder | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings or Settings()
        self._store = store
        self.config = config or pipeline_config(self.settings)
        self.clock = clock
        self.fetch_limits = FetchLimits(
            max_bytes=self.settings.upload_max_bytes,
            timeout=self.settings.fetch_timeout,
            max_redirects=self.settings.fetch_max_redirects,
            allow_private=self.settings.fetch_allow_private,
        )
        self.parse_options = ParseOptions(ocr=self.settings.ocr)
        self._embedder = embedder
        self._chunker: TokenChunker | None = None
        self._batcher: EmbeddingBatcher | None = None
        self._pool: ParserPool | None = None
        self._parse_slots = asyncio.Semaphore(self.settings.parser_processes)

    async def __aenter__(self) -> IngestRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def store(self) -> IngestStore:
        """Checked on use, so a worker on a store without documents still runs plain jobs."""
        return index_store(self._store)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            limiter = BucketRateLimiter(
                _DatabaseBuckets(self.store, self.clock),
                f"embed:{self.config.embedder.kind}",
                getattr(self.config.embedder, "rate_limits", RateLimits()),
            )
            self._embedder = build_embedder(self.config.embedder, limiter)
        return self._embedder

    @property
    def chunker(self) -> TokenChunker:
        if self._chunker is None:
            self._chunker = build_chunker(self.config.chunker, self.embedder)
        return self._chunker

    @property
    def batcher(self) -> EmbeddingBatcher:
        if self._batcher is None:
            embedder = self.embedder
            self._batcher = EmbeddingBatcher(
                embedder.embed,
                batch_size=embedder.batch_size,
                max_batch_tokens=embedder.max_batch_tokens,
                count_tokens=embedder.count_tokens if embedder.max_batch_tokens else None,
                # the local model pads each call to its longest text; remote services bill tokens
                group_by_length=isinstance(self.config.embedder, SentenceTransformersConfig),
            )
            self._batcher.start()
        return self._batcher

    @property
    def pool(self) -> ParserPool:
        if self._pool is None:
            limits = SandboxLimits(
                time_limit=self.settings.parse_time_limit, max_input_bytes=self.settings.upload_max_bytes
            )
            self._pool = ParserPool(self.settings.parser_processes, limits, self.parse_options)
        return self._pool

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
            self._batcher = None
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)
            self._pool = None
        if self._embedder is not None:
            await self._embedder.aclose()

    def registry(self) -> Registry:
        return register_ingestion(Registry(), self.settings, self.ingest, self.backfill)

    # --- ingestq.ingest -----------------------------------------------------------------------------

    async def ingest(
        self, ctx: JobContext, collection: str, document_id: str, force: bool = False
    ) -> dict[str, Any]:
        attempt = _Attempt()
        ctx.finalize_with(functools.partial(self._finalize, attempt, collection, document_id))
        try:
            return await self._ingest(ctx, attempt, collection, document_id, force)
        except Exception as exc:
            attempt.reason = _one_line(str(exc) or type(exc).__name__)
            raise

    async def _ingest(
        self, ctx: JobContext, attempt: _Attempt, collection: str, document_id: str, force: bool
    ) -> dict[str, Any]:
        started = time.monotonic()
        doc = await self.store.document_get(collection, document_id)
        if doc is None:
            attempt.missing = True
            raise PermanentError(f"document {document_id!r} is not in collection {collection!r}")
        attempt.had_version = doc.version > 0
        model_id = self.embedder.model_id
        existing = await self.store.collection_get(collection)
        if existing is not None and existing.model_id != model_id:
            raise PermanentError(
                f"collection {collection!r} is embedded with {existing.model_id}, this worker embeds "
                f"with {model_id}: use another collection or a worker configured for that model"
            )

        stages = _Stages()
        stages.enter("fetch")
        await ctx.progress("fetch")
        source = await self._load(doc)
        ctx.raise_if_cancelled()
        content_hash = hashlib.sha256(source.data).hexdigest()
        if not force and _serves(doc, content_hash, model_id, self.config.fingerprint()):
            # Re-ingesting unchanged content: the served chunks already are what parsing, chunking and
            # embedding would make again, so skip the parser process and the model entirely.
            attempt.unchanged = True
            await ctx.progress("commit", doc.chunk_count, doc.chunk_count)
            return {
                "unchanged": True,
                "media_type": doc.media_type,
                "chunks": doc.chunk_count,
                "embedded": 0,
                "reused": doc.chunk_count,
                "seconds": round(time.monotonic() - started, 3),
                "stage_seconds": stages.report(),
                "embedded_tokens": 0,
            }

        stages.enter("detect")
        await ctx.progress("detect")
        detect(source)  # unsupported or encrypted input fails here, before a parser process is used
        ctx.raise_if_cancelled()

        stages.enter("parse")
        await ctx.progress("parse")
        async with self._parse_slots:
            result = await self.pool.aparse(source, self.parse_options)
        if result.document is None:
            if result.quarantine:
                attempt.quarantine = True
                raise RetryableError(result.reason)
            raise result.error()
        parsed = result.document
        ctx.raise_if_cancelled()

        stages.enter("chunk")
        await ctx.progress("chunk")
        chunks = await asyncio.to_thread(self.chunker.chunk, parsed, document_id)
        if not chunks:
            raise NoTextFound("no text to index")
        ctx.raise_if_cancelled()

        total = len(chunks)
        stages.enter("embed")
        await ctx.progress("embed", 0, total)
        cache = _StoreCache(self.store, model_id, self.clock)
        vectors: list[Vector] = []
        embedded = reused = embedded_tokens = 0
        tokens = {c.text: c.token_count for c in chunks}  # counted by the chunker: not again

        async def embed(texts: Sequence[str]) -> list[Vector]:
            nonlocal embedded_tokens
            counts = [tokens[t] for t in texts]
            embedded_tokens += sum(counts)
            return await self.batcher.embed(texts, counts)

        for start in range(0, total, _EMBED_SLICE):
            part = chunks[start : start + _EMBED_SLICE]
            got = await embed_with_cache([c.text for c in part], model_id, embed, cache)
            vectors.extend(got.vectors)
            embedded += got.embedded
            reused += got.reused
            await ctx.progress("embed", len(vectors), total)
            ctx.raise_if_cancelled()

        await self.store.collection_ensure(collection, model_id, len(vectors[0]), self.clock.now())
        attempt.write = IndexWrite(
            collection=collection,
            document_id=document_id,
            media_type=parsed.media_type.value,
            content_hash=content_hash,
            title=parsed.title or source.name or doc.source,
            model_id=model_id,
            settings_hash=self.config.fingerprint(),
            chunks=tuple(
                ChunkRecord(
                    id=c.id,
                    ordinal=c.ordinal,
                    text=c.text,
                    body=c.body,
                    heading_path=c.heading_path,
                    page=c.page,
                    page_end=c.page_end,
                    token_count=c.token_count,
                    text_hash=c.text_hash,
                    embedding=v,
                )
                for c, v in zip(chunks, vectors, strict=True)
            ),
            metadata=doc.metadata,
        )
        await ctx.progress("commit", total, total)  # the commit itself runs after this returns
        return {
            "media_type": parsed.media_type.value,
            "pages": parsed.pages,
            "chunks": total,
            "embedded": embedded,
            "reused": reused,
            "max_tokens": max(c.token_count for c in chunks),
            "warnings": list(parsed.warnings[:20]),
            "seconds": round(time.monotonic() - started, 3),
            "stage_seconds": stages.report(),
            "embedded_tokens": embedded_tokens,
        }

    async def _load(self, doc: Document) -> SourceDocument:
        limit = self.settings.upload_max_bytes
        if doc.blob_id is not None:
            data = await self.store.blob_get(doc.blob_id)
            if data is None:
                raise PermanentError(f"uploaded bytes {doc.blob_id[:12]} are gone")
            name = doc.source.removeprefix("upload:")
            return from_bytes(data, name, limit, source=doc.source)
        if is_url(doc.source):
            return await fetch_url(doc.source, self.fetch_limits)
        # checked again here, not only at registration: the row may predate the roots, or come from a
        # client configured otherwise
        return await asyncio.to_thread(read_file, doc.source, limit, self.settings.ingest_path_roots)

    async def _finalize(self, attempt: _Attempt, collection: str, document_id: str, outcome: Outcome) -> bool:
        now = self.clock.now()
        kind = outcome.kind
        if kind is OutcomeKind.SUCCEEDED and attempt.write is not None:
            return await self.store.document_commit(attempt.write, outcome, now)
        if kind is OutcomeKind.SUCCEEDED and attempt.unchanged:
            return await self.store.document_mark(
                collection, document_id, DocumentStatus.INDEXED, None, outcome, now
            )
        if not attempt.missing and kind is OutcomeKind.FAILED:
            status = DocumentStatus.QUARANTINED if attempt.quarantine else DocumentStatus.FAILED
            reason = attempt.reason or outcome.error or "failed"
            return await self.store.document_mark(collection, document_id, status, reason, outcome, now)
        if not attempt.missing and kind is OutcomeKind.CANCELLED:
            # a cancelled re-ingest leaves the previous version searchable
            status = DocumentStatus.INDEXED if attempt.had_version else DocumentStatus.FAILED
            error = None if attempt.had_version else CANCELLED_BEFORE_INDEXED
            return await self.store.document_mark(collection, document_id, status, error, outcome, now)
        return bool(await self.store.job_finish_many([outcome], now))

    # --- ingestq.backfill ---------------------------------------------------------------------------

    async def backfill(self, ctx: JobContext, collection: str) -> dict[str, Any]:
        jobs = await backfill_collection(
            self.store, collection, self.embedder.model_id, self.config.fingerprint(), self.clock, ctx
        )
        return {"queued": len(jobs)}


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
