"""One attempt at ingesting one document, as named steps:

    document → load → (unchanged? done) → detect → parse → chunk → embed → index write

`run` returns the job's result and leaves the new version in `write`; the worker's completer then calls
`finalize(outcome)`, which commits the chunks, the vectors and the job's outcome in one fenced
transaction (`IndexStore.document_commit`), or marks the document failed, quarantined or back to its
previous version, whatever the outcome. Nothing holds a transaction open while parsing or embedding.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ingestq.errors import PermanentError, RetryableError
from ingestq.model.document import ChunkRecord, Document, DocumentStatus, IndexWrite, Vector
from ingestq.model.job import Outcome, OutcomeKind
from ingestq.pipeline.chunk.base import Chunk
from ingestq.pipeline.detect import detect
from ingestq.pipeline.embed.cache import embed_with_cache
from ingestq.pipeline.errors import NoTextFound
from ingestq.pipeline.ingest.adapters import StoreCache
from ingestq.pipeline.model import ParsedDocument, SourceDocument
from ingestq.pipeline.sources import fetch_url, from_bytes, is_url, read_file
from ingestq.store.common import CANCELLED_BEFORE_INDEXED
from ingestq.tasks.task import JobContext

if TYPE_CHECKING:
    from ingestq.clock import Clock
    from ingestq.pipeline.chunk.token import TokenChunker
    from ingestq.pipeline.config import PipelineConfig
    from ingestq.pipeline.embed.base import Embedder
    from ingestq.pipeline.embed.batcher import EmbeddingBatcher
    from ingestq.pipeline.ingest.enqueue import IngestStore
    from ingestq.pipeline.model import ParseOptions
    from ingestq.pipeline.sandbox import ParserPool
    from ingestq.pipeline.sources import FetchLimits
    from ingestq.settings import Settings

EMBED_SLICE = 128  # texts per embed call from one job: progress granularity, not the model's batch


def one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def serves(doc: Document, content_hash: str, model_id: str, settings_hash: str) -> bool:
    """Whether the document's served version was built from these bytes with this model and settings."""
    return (
        doc.version > 0
        and doc.content_hash == content_hash
        and doc.model_id == model_id
        and doc.settings_hash == settings_hash
    )


class Resources(Protocol):
    """What an attempt uses of the worker's shared ingestion resources (IngestRuntime provides them)."""

    settings: Settings
    config: PipelineConfig
    clock: Clock
    fetch_limits: FetchLimits
    parse_options: ParseOptions
    parse_slots: asyncio.Semaphore

    @property
    def store(self) -> IngestStore: ...

    @property
    def embedder(self) -> Embedder: ...

    @property
    def chunker(self) -> TokenChunker: ...

    @property
    def batcher(self) -> EmbeddingBatcher: ...

    @property
    def pool(self) -> ParserPool: ...


class IngestAttempt:
    """What one attempt does, and what it learned for its finalizer."""

    def __init__(
        self, runtime: Resources, ctx: JobContext, collection: str, document_id: str, force: bool
    ) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.collection = collection
        self.document_id = document_id
        self.force = force
        self.write: IndexWrite | None = None
        self.reason: str | None = None  # the failure's one-line reason, for the document
        self.quarantine = False  # the parser crashed or timed out on it
        self.missing = False  # the document is gone
        self.had_version = False  # a previous version stays searchable if this one fails
        self.unchanged = False  # the served version already is these bytes with this model and settings
        self.stage_seconds: dict[str, float] = {}  # per stage, reported in the job's result
        self.embedded_tokens = 0  # tokens sent to the embedder (cache misses)
        self._stage: tuple[str, float] | None = None

    async def _enter(self, stage: str, done: int = 0, total: int | None = None) -> None:
        """Report `stage` as the job's progress and time the stages (the commit runs after `run`
        returns, so it is not timed)."""
        now = time.monotonic()
        if self._stage is not None:
            name, since = self._stage
            self.stage_seconds[name] = round(self.stage_seconds.get(name, 0.0) + now - since, 4)
        self._stage = (stage, now) if stage != "commit" else None
        await self.ctx.progress(stage, done, total)

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        rt, ctx = self.runtime, self.ctx
        doc = await self._document()
        model_id = await self._model_for_collection()
        await self._enter("fetch")
        source = await self._load(doc)
        ctx.raise_if_cancelled()
        content_hash = hashlib.sha256(source.data).hexdigest()
        if not self.force and serves(doc, content_hash, model_id, rt.config.fingerprint()):
            # Re-ingesting unchanged content: the served chunks already are what parsing, chunking and
            # embedding would make again, so skip the parser process and the model entirely.
            self.unchanged = True
            await self._enter("commit", doc.chunk_count, doc.chunk_count)
            return {
                "unchanged": True,
                "media_type": doc.media_type,
                "chunks": doc.chunk_count,
                "embedded": 0,
                "reused": doc.chunk_count,
                "seconds": round(time.monotonic() - started, 3),
                "stage_seconds": self.stage_seconds,
                "embedded_tokens": 0,
            }
        parsed = await self._parse(source)
        chunks = await self._chunk(parsed)
        vectors, embedded, reused = await self._embed(chunks, model_id)
        await rt.store.collection_ensure(self.collection, model_id, len(vectors[0]), rt.clock.now())
        self.write = self._index_write(doc, source, parsed, content_hash, model_id, chunks, vectors)
        total = len(chunks)
        await self._enter("commit", total, total)
        return {
            "media_type": parsed.media_type.value,
            "pages": parsed.pages,
            "chunks": total,
            "embedded": embedded,
            "reused": reused,
            "max_tokens": max(c.token_count for c in chunks),
            "warnings": list(parsed.warnings[:20]),
            "seconds": round(time.monotonic() - started, 3),
            "stage_seconds": self.stage_seconds,
            "embedded_tokens": self.embedded_tokens,
        }

    # --- steps ---------------------------------------------------------------------------------------
    async def _document(self) -> Document:
        doc = await self.runtime.store.document_get(self.collection, self.document_id)
        if doc is None:
            self.missing = True
            raise PermanentError(f"document {self.document_id!r} is not in collection {self.collection!r}")
        self.had_version = doc.version > 0
        return doc

    async def _model_for_collection(self) -> str:
        model_id = self.runtime.embedder.model_id
        existing = await self.runtime.store.collection_get(self.collection)
        if existing is not None and existing.model_id != model_id:
            raise PermanentError(
                f"collection {self.collection!r} is embedded with {existing.model_id}, this worker embeds "
                f"with {model_id}: use another collection or a worker configured for that model"
            )
        return model_id

    async def _load(self, doc: Document) -> SourceDocument:
        rt = self.runtime
        limit = rt.settings.upload_max_bytes
        if doc.blob_id is not None:
            data = await rt.store.blob_get(doc.blob_id)
            if data is None:
                raise PermanentError(f"uploaded bytes {doc.blob_id[:12]} are gone")
            name = doc.source.removeprefix("upload:")
            return from_bytes(data, name, limit, source=doc.source)
        if is_url(doc.source):
            return await fetch_url(doc.source, rt.fetch_limits)
        # checked again here, not only at registration: the row may predate the roots, or come from a
        # client configured otherwise
        return await asyncio.to_thread(read_file, doc.source, limit, rt.settings.ingest_path_roots)

    async def _parse(self, source: SourceDocument) -> ParsedDocument:
        rt, ctx = self.runtime, self.ctx
        await self._enter("detect")
        detect(source)  # unsupported or encrypted input fails here, before a parser process is used
        ctx.raise_if_cancelled()
        await self._enter("parse")
        async with rt.parse_slots:
            result = await rt.pool.aparse(source, rt.parse_options)
        if result.document is None:
            if result.quarantine:
                self.quarantine = True
                raise RetryableError(result.reason)
            raise result.error()
        ctx.raise_if_cancelled()
        return result.document

    async def _chunk(self, parsed: ParsedDocument) -> list[Chunk]:
        await self._enter("chunk")
        chunks = await asyncio.to_thread(self.runtime.chunker.chunk, parsed, self.document_id)
        if not chunks:
            raise NoTextFound("no text to index")
        self.ctx.raise_if_cancelled()
        return chunks

    async def _embed(self, chunks: Sequence[Chunk], model_id: str) -> tuple[list[Vector], int, int]:
        """The chunks' vectors (from the cache where it has them) and how many were embedded or reused."""
        rt, ctx = self.runtime, self.ctx
        total = len(chunks)
        await self._enter("embed", 0, total)
        cache = StoreCache(rt.store, model_id, rt.clock)
        tokens = {c.text: c.token_count for c in chunks}  # counted by the chunker: not again

        async def embed(texts: Sequence[str]) -> list[Vector]:
            counts = [tokens[t] for t in texts]
            self.embedded_tokens += sum(counts)
            return await rt.batcher.embed(texts, counts)

        vectors: list[Vector] = []
        embedded = reused = 0
        for start in range(0, total, EMBED_SLICE):
            part = chunks[start : start + EMBED_SLICE]
            got = await embed_with_cache([c.text for c in part], model_id, embed, cache)
            vectors.extend(got.vectors)
            embedded += got.embedded
            reused += got.reused
            await ctx.progress("embed", len(vectors), total)
            ctx.raise_if_cancelled()
        return vectors, embedded, reused

    def _index_write(
        self,
        doc: Document,
        source: SourceDocument,
        parsed: ParsedDocument,
        content_hash: str,
        model_id: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Vector],
    ) -> IndexWrite:
        return IndexWrite(
            collection=self.collection,
            document_id=self.document_id,
            media_type=parsed.media_type.value,
            content_hash=content_hash,
            title=parsed.title or source.name or doc.source,
            model_id=model_id,
            settings_hash=self.runtime.config.fingerprint(),
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

    # --- the finalizer -------------------------------------------------------------------------------
    async def finalize(self, outcome: Outcome) -> bool:
        """Commit the outcome with what it means for the document (the worker calls this, fenced)."""
        store = self.runtime.store
        now = self.runtime.clock.now()
        kind = outcome.kind
        collection, document_id = self.collection, self.document_id
        if kind is OutcomeKind.SUCCEEDED and self.write is not None:
            return await store.document_commit(self.write, outcome, now)
        if kind is OutcomeKind.SUCCEEDED and self.unchanged:
            return await store.document_mark(
                collection, document_id, DocumentStatus.INDEXED, None, outcome, now
            )
        if not self.missing and kind is OutcomeKind.FAILED:
            status = DocumentStatus.QUARANTINED if self.quarantine else DocumentStatus.FAILED
            reason = self.reason or outcome.error or "failed"
            return await store.document_mark(collection, document_id, status, reason, outcome, now)
        if not self.missing and kind is OutcomeKind.CANCELLED:
            # a cancelled re-ingest leaves the previous version searchable
            status = DocumentStatus.INDEXED if self.had_version else DocumentStatus.FAILED
            error = None if self.had_version else CANCELLED_BEFORE_INDEXED
            return await store.document_mark(collection, document_id, status, error, outcome, now)
        return bool(await store.job_finish_many([outcome], now))
