"""Request and response bodies of the documents and search routes (JSON, as OpenAPI shows them)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ingestq.api.webhook_schemas import Callbacks
from ingestq.model.document import ChunkRecord, Document, Hit
from ingestq.model.job import Job

COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
COLLECTION_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"


def check_collection(name: str) -> str:
    if not COLLECTION.fullmatch(name):
        raise ValueError(f"collection {name!r}: {COLLECTION_RULE}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceBody(_Strict):
    """`POST /v1/documents` as JSON: exactly one of `url`, `text` or `path`."""

    url: str | None = Field(None, description="http(s) URL a worker fetches (public addresses only)")
    text: str | None = Field(None, description="the document itself (Markdown or plain text)")
    title: str | None = Field(None, max_length=200, description="with `text`: its name")
    path: str | None = Field(None, description="a file or directory under INGESTQ_INGEST_PATH_ROOTS")
    collection: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    callbacks: Callbacks = Field(default_factory=list)

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str | None) -> str | None:
        return None if value is None else check_collection(value)

    @model_validator(mode="after")
    def _one_source(self) -> SourceBody:
        given = [name for name in ("url", "text", "path") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of url, text or path")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: only http and https URLs can be ingested")
        if self.title is not None and self.text is None:
            raise ValueError("title goes with text")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self


class Accepted(BaseModel):
    """One document of an ingest request: its id, its ingestion job and where to follow it."""

    document_id: str
    collection: str
    job_id: int | None
    status: str
    duplicate: bool = Field(description="the same content was already in the collection: nothing was queued")
    location: str


class AcceptedBatch(BaseModel):
    """The documents of an ingest request; with exactly one, its fields are repeated at the top."""

    documents: list[Accepted]
    document_id: str | None = None
    collection: str | None = None
    job_id: int | None = None
    status: str | None = None
    duplicate: bool | None = None


class JobView(BaseModel):
    id: int
    state: str
    attempt: int
    max_attempts: int
    stage: str | None
    done: int | None
    total: int | None
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        p = job.progress
        return cls(
            id=job.id,
            state=job.state.value,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            stage=p.stage if p else None,
            done=p.done if p else None,
            total=p.total if p else None,
            last_error=job.last_error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class Timings(BaseModel):
    queued_seconds: float | None = Field(description="from the job's creation to its (last) start")
    run_seconds: float | None = Field(description="from its start to its end, or to now while it runs")
    stages: dict[str, float] = Field(description="seconds per pipeline stage of the last run that wrote them")


class Tokens(BaseModel):
    indexed: int = Field(description="tokens in the current version's chunks")
    embedded: int | None = Field(description="tokens the last run sent to the embedder (cache misses)")


class ChunkView(BaseModel):
    id: str
    ordinal: int
    text: str
    heading_path: list[str]
    page: int | None
    page_end: int | None
    token_count: int

    @classmethod
    def of(cls, c: ChunkRecord) -> ChunkView:
        return cls(
            id=c.id,
            ordinal=c.ordinal,
            text=c.body,
            heading_path=list(c.heading_path),
            page=c.page,
            page_end=c.page_end,
            token_count=c.token_count,
        )


class DocumentView(BaseModel):
    collection: str
    id: str
    source: str
    status: str
    version: int
    media_type: str | None
    content_hash: str | None
    title: str | None
    metadata: dict[str, Any]
    chunk_count: int
    model_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    location: str

    @classmethod
    def of(cls, d: Document, location: str) -> DocumentView:
        return cls(
            collection=d.collection,
            id=d.id,
            source=d.source,
            status=d.status.value,
            version=d.version,
            media_type=d.media_type,
            content_hash=d.content_hash,
            title=d.title,
            metadata=d.metadata,
            chunk_count=d.chunk_count,
            model_id=d.model_id,
            error=d.error,
            created_at=d.created_at,
            updated_at=d.updated_at,
            location=location,
        )


class DocumentDetail(DocumentView):
    job: JobView | None = Field(description="the document's latest ingestion job")
    last_error: str | None = Field(description="the document's error, or else its latest job's")
    timings: Timings | None
    tokens: Tokens
    chunks: list[ChunkView] | None = Field(None, description="with ?chunks=true")


class DocumentPage(BaseModel):
    documents: list[DocumentView]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last one")
    next_after_collection: str | None = Field(
        description="without a collection filter, pass as `after_collection` too (collections share ids)"
    )


class Reprocessed(BaseModel):
    document_id: str
    collection: str
    job_id: int
    status: str
    location: str


class SearchBody(_Strict):
    query: str = Field(min_length=1, max_length=10_000)
    collection: str | None = None
    k: int = Field(10, ge=1, le=100)
    metadata: dict[str, Any] = Field(default_factory=dict, description="equality filters on metadata")
    mode: Literal["hybrid", "vector", "text"] = "hybrid"

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str | None) -> str | None:
        return None if value is None else check_collection(value)


class HitView(BaseModel):
    document_id: str
    collection: str
    chunk_id: str
    title: str | None
    heading_path: list[str]
    page: int | None
    score: float
    text: str
    source: str
    metadata: dict[str, Any]
    location: str

    @classmethod
    def of(cls, h: Hit, location: str) -> HitView:
        return cls(
            document_id=h.document_id,
            collection=h.collection,
            chunk_id=h.chunk_id,
            title=h.title,
            heading_path=list(h.heading_path),
            page=h.page,
            score=h.score,
            text=h.text,
            source=h.source,
            metadata=h.metadata,
            location=location,
        )


class SearchResult(BaseModel):
    query: str
    collection: str
    mode: str
    hits: list[HitView]
