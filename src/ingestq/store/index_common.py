"""What both IndexStore backends share: row mappers, the commit's checks and its fencing signal.

The mappers take each dialect's decoders for the two column types the drivers return differently: JSON
(text on SQLite, already decoded by psycopg) and timestamps (unix seconds on SQLite, datetimes from
psycopg). The columns are in the order both index_queries.sql files select them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, BinaryIO

from ingestq.errors import StoreError
from ingestq.model.document import Collection, Document, DocumentStatus, Hit, IndexWrite

Decode = Callable[[Any], Any]

IDEMPOTENCY_PRUNE_BATCH = 100
"""Expired Idempotency-Key answers deleted by each put: the table stays as small as a day's requests."""


class Fenced(Exception):
    """The job's outcome did not apply: roll the whole transaction back."""


BLOB_CHUNK = 1024**2
"""Bytes read from an upload's file at a time: what `blob_put_file` holds in memory."""


def file_chunks(file: BinaryIO) -> Iterator[bytes]:
    """The file's bytes from its start, `BLOB_CHUNK` at a time."""
    file.seek(0)
    while chunk := file.read(BLOB_CHUNK):
        yield chunk


def file_digest(file: BinaryIO) -> tuple[str, int]:
    """(sha256 hex, size) of the file's bytes: the blob id `blob_put` gives the same bytes."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in file_chunks(file):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def enqueue_pairs(documents: int, jobs: int) -> bool:
    """document_enqueue's arguments: one job per document (ValueError otherwise); False when empty."""
    if documents != jobs:
        raise ValueError(f"{documents} documents but {jobs} jobs")
    return documents > 0


def document_from_row(row: Sequence[Any], json: Decode, time: Callable[[Any], datetime]) -> Document:
    (collection, id_, source, status, version, media_type, content_hash, title, metadata) = row[:9]
    (chunk_count, model_id, settings_hash, error, blob_id, created, updated) = row[9:]
    return Document(
        collection=collection,
        id=id_,
        source=source,
        status=DocumentStatus(status),
        version=version,
        media_type=media_type,
        content_hash=content_hash,
        title=title,
        metadata=json(metadata),
        chunk_count=chunk_count,
        model_id=model_id,
        settings_hash=settings_hash,
        error=error,
        blob_id=blob_id,
        created_at=time(created),
        updated_at=time(updated),
    )


def collection_from_row(row: Sequence[Any], time: Callable[[Any], datetime]) -> Collection:
    return Collection(name=row[0], model_id=row[1], dimension=row[2], created_at=time(row[3]))


def hit_from_row(collection: str, row: Sequence[Any], json: Decode) -> Hit:
    chunk_id, doc_id, title, source, body, page, heading_path, score, metadata = row
    return Hit(
        chunk_id=chunk_id,
        collection=collection,
        document_id=doc_id,
        title=title,
        source=source,
        text=body,
        page=page,
        heading_path=tuple(json(heading_path)),
        score=float(score),
        metadata=json(metadata),
    )


def commit_collection(write: IndexWrite, coll: Sequence[Any] | None) -> Sequence[Any]:
    """The collection row (collection_get's columns, or None if missing) that `write` goes into; refuses,
    before anything is written, a missing collection, another model or a chunk of the wrong dimensions."""
    if coll is None:
        raise StoreError(f"collection {write.collection!r} does not exist: ensure it before indexing")
    name, model_id, dimension = coll[0], coll[1], coll[2]
    if model_id != write.model_id:
        raise StoreError(
            f"collection {name!r} is embedded with {model_id!r}, not {write.model_id!r}: "
            "use another collection or re-create it"
        )
    for c in write.chunks:
        if c.embedding is None or len(c.embedding) != dimension:
            got = "no vector" if c.embedding is None else f"{len(c.embedding)} dimensions"
            raise ValueError(f"chunk {c.id!r}: collection {name!r} needs {dimension} dimensions, got {got}")
    return coll
