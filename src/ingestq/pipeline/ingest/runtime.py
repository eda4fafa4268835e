"""The ingestion kinds' handlers and the resources they share (`IngestRuntime`).

`ingestq.ingest` (one document) runs an `IngestAttempt` (attempt.py): load the source → detect its type
→ parse in the sandboxed process pool → chunk → embed through the database-backed cache and the shared
cross-document batcher → commit. Nothing holds a transaction open while parsing or embedding: the
attempt hands the new version to the worker as a finalizer (`JobContext.finalize_with`), and the
worker's completer writes chunks, vectors and the job's outcome in one transaction
(`IndexStore.document_commit`), fenced like any outcome, so a worker that lost its lease can neither
finish the job nor swap the chunks. A permanent failure marks the document failed in the same way; a
parser that crashed or timed out is retried and, once the attempts are spent, the document is
quarantined (counted apart).

`ingestq.backfill` re-queues the indexed documents of a collection built with another model or other
chunker settings.

The runtime (embedder, chunker, batcher, parser pool) is built lazily from Settings, so a worker that
never sees an ingestion job never loads a model or starts a parser process.

Faults of the machine are not the document's: a parser process that cannot start, a local model that does
not load or an embedder that cannot be built raise `ingestq.errors.Unavailable` (one line, `<cause>;
<fix>`, with `health_check` as its `recheck`), so the worker gives the job back without spending its
attempt and pauses ingestion until the check passes. `ingestq worker` runs `health_check` before its
first claim.

A remote embedding service that stays down, overloaded or rate limited past the HTTP embedder's in-call
retries (`EmbedServiceUnavailable`) is not the document's fault either, so it is mapped the same way:
`Unavailable`, rechecked by one embedding request (`embedder_check`, through the shared rate limit). Mapped
as a plain `RetryableError` it spent an attempt of every document waiting in the failed batch, and a
service down for a minute failed them all (3 attempts; bench/chaos `embed-faults`). The start-up health
check builds a remote embedder (so a bad URL or a missing key shows at once) but does not call it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.errors import Unavailable
from ingestq.outbound import parse_networks
from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.config import (
    PipelineConfig,
    SentenceTransformersConfig,
    build_chunker,
    build_embedder,
    pipeline_config,
)
from ingestq.pipeline.embed.base import Embedder
from ingestq.pipeline.embed.batcher import EmbeddingBatcher
from ingestq.pipeline.embed.errors import (
    EmbedderConfigError,
    EmbedderUnavailable,
    EmbedServiceUnavailable,
)
from ingestq.pipeline.embed.ratelimit import BucketRateLimiter, RateLimits
from ingestq.pipeline.errors import ParserUnavailable
from ingestq.pipeline.ingest.adapters import DatabaseBuckets
from ingestq.pipeline.ingest.attempt import IngestAttempt, one_line
from ingestq.pipeline.ingest.enqueue import IngestStore, backfill_collection, index_store
from ingestq.pipeline.ingest.kinds import register_ingestion
from ingestq.pipeline.model import ParseOptions
from ingestq.pipeline.sandbox import ParserPool, SandboxLimits
from ingestq.pipeline.sources import FetchLimits
from ingestq.settings import Settings
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext


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
            allow_networks=parse_networks(self.settings.fetch_allow_networks),
        )
        self.parse_options = ParseOptions(ocr=self.settings.ocr)
        self._embedder = embedder
        self._chunker: TokenChunker | None = None
        self._batcher: EmbeddingBatcher | None = None
        self._pool: ParserPool | None = None
        self.parse_slots = asyncio.Semaphore(self.settings.parser_processes)

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
                DatabaseBuckets(self.store, self.clock),
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

    # --- health -------------------------------------------------------------------------------------

    async def health_check(self) -> None:
        """Raise `Unavailable` unless ingestion can run on this machine: a parser child starts and parses a
        tiny document, and the embedder is built (the local model is loaded and embeds one text). The
        `recheck` of every `Unavailable` this runtime raises, and `ingestq worker`'s start-up check."""
        try:
            async with self.parse_slots:
                await asyncio.to_thread(self.pool.check)
            embedder = self.embedder
            if isinstance(self.config.embedder, SentenceTransformersConfig):
                await embedder.embed(["ingestq model check"])
        except Unavailable:
            raise
        except (ParserUnavailable, EmbedderUnavailable, EmbedderConfigError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> Unavailable:
        if isinstance(exc, EmbedServiceUnavailable):
            reason = f"embedding service unavailable: {one_line(str(exc))}"
            fix = "ingestion resumes by itself once it answers (checked with backoff)"
            return Unavailable(f"{reason}; {fix}", self.embedder_check)
        return Unavailable(one_line(str(exc) or type(exc).__name__), self.health_check)

    async def embedder_check(self) -> None:
        """The recheck after the embedding service failed: one request, which raises `Unavailable`
        while the service still fails (its own in-call retries and Retry-After included)."""
        try:
            await self.embedder.embed(["ingestq embedder check"])
        except EmbedServiceUnavailable as exc:
            raise self._unavailable(exc) from exc

    # --- ingestq.ingest -----------------------------------------------------------------------------

    async def ingest(
        self, ctx: JobContext, collection: str, document_id: str, force: bool = False
    ) -> dict[str, Any]:
        attempt = IngestAttempt(self, ctx, collection, document_id, force)
        ctx.finalize_with(attempt.finalize)
        try:
            return await attempt.run()
        except (ParserUnavailable, EmbedderUnavailable, EmbedderConfigError, EmbedServiceUnavailable) as exc:
            # this machine's or the provider's fault: the document stays pending, its attempt kept
            raise self._unavailable(exc) from exc
        except Exception as exc:
            attempt.reason = one_line(str(exc) or type(exc).__name__)
            raise

    # --- ingestq.backfill ---------------------------------------------------------------------------

    async def backfill(self, ctx: JobContext, collection: str) -> dict[str, Any]:
        jobs = await backfill_collection(
            self.store, collection, self.embedder.model_id, self.config.fingerprint(), self.clock, ctx
        )
        return {"queued": len(jobs)}
