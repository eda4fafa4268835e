"""Documents, chunks and search hits as the storage seam sees them (a leaf: imports nothing of ours).

Document status::

    pending ──job succeeds──▶ indexed ──re-ingest / reprocess / backfill──▶ pending ...
       └──bad input (permanent)──▶ failed        └──parser crashed or timed out repeatedly──▶ quarantined

A document keeps serving its last indexed version while a new one is pending: the chunks of version
N+1 replace those of version N in the one transaction that also completes the job.

A document is pending only while its ingestion job is queued or running. When a job that concerns a
document (its document_id is set and its payload names the collection) ends without its handler
(cancelled while queued; cancelled or failed by the lease rescue because its workers kept dying), the
store settles the document in the same transaction: back to indexed if it has a version (those chunks
are still served), otherwise failed with store/common.py's CANCELLED_BEFORE_INDEXED or the job's last
error. A person's retry of such a job makes it pending again. The store does not know which job kinds
ingest: the document_id is what it settles by.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Vector = list[float]


class DocumentStatus(enum.StrEnum):
    PENDING = "pending"
    """An ingestion job is queued or running for it."""
    INDEXED = "indexed"
    """Its current version's chunks are searchable."""
    FAILED = "failed"
    """Bad input (unreadable, encrypted, too large, unsupported): `error` says why. No retry."""
    QUARANTINED = "quarantined"
    """The parser crashed or timed out on it repeatedly: kept apart from ordinary failures."""


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    model_id: str
    dimension: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """What an ingest request registers before any work is done."""

    collection: str
    id: str
    source: str
    blob_id: str | None = None  # uploaded bytes, stored in the database for remote workers
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    collection: str
    id: str
    source: str
    status: DocumentStatus
    version: int  # 0 until first indexed; +1 at each successful index of changed content
    media_type: str | None
    content_hash: str | None
    title: str | None
    metadata: dict[str, Any]
    chunk_count: int
    model_id: str | None
    settings_hash: str | None  # chunker settings the current version was built with (for backfill)
    error: str | None
    blob_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: str
    ordinal: int
    text: str  # what was embedded (heading prefix included when enabled)
    body: str  # the document's own text
    heading_path: tuple[str, ...]
    page: int | None
    page_end: int | None
    token_count: int
    text_hash: str
    embedding: Vector | None = None  # None when read back without vectors


@dataclass(frozen=True, slots=True)
class IndexWrite:
    """A new version of one document's chunks, written atomically with the job's completion."""

    collection: str
    document_id: str
    media_type: str
    content_hash: str
    title: str
    model_id: str
    settings_hash: str
    chunks: tuple[ChunkRecord, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    collection: str | None = None
    status: DocumentStatus | None = None
    after_id: str | None = None  # keyset pagination by (id, collection) ascending
    limit: int = 100
    after_collection: str | None = None  # with after_id, across collections: the last row's collection


@dataclass(frozen=True, slots=True)
class SearchQuery:
    collection: str
    k: int = 10
    vector: Vector | None = None  # k-NN by cosine distance
    text: str | None = None  # full-text (FTS5 / tsvector)
    metadata: dict[str, Any] = field(default_factory=dict)  # equality filters on document metadata


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: str
    collection: str
    document_id: str
    title: str | None
    source: str
    text: str  # the chunk's body
    page: int | None
    heading_path: tuple[str, ...]
    score: float  # higher is better: 1 - cosine distance for vectors, rank-based for text
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BucketRow:
    """A shared rate-limit bucket: what is left and when it was last updated (see pipeline ratelimit)."""

    requests: float
    tokens: float
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IdempotentReply:
    """An answer of the HTTP service kept for an `Idempotency-Key` (stored beside the documents)."""

    key: str  # the client's key, scoped by the route it was sent to
    fingerprint: str  # sha256 of what the request asked for
    status: int
    body: str  # the JSON answer as first sent
    location: str | None
    created_at: datetime
    expires_at: datetime  # after this the key may be used again
