"""The `IndexStore` half of PostgresStore: documents, chunks with pgvector embeddings and tsvectors,
blobs, the embedding cache and rate buckets, on the store's own connection pool.

`document_commit` runs the queue's own fenced `job_finish_many` statement first in its transaction;
if the outcome does not apply, the transaction rolls back and nothing is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO

from psycopg.errors import UniqueViolation

from ingestq.errors import StoreError
from ingestq.model.document import (
    BucketRow,
    ChunkRecord,
    Collection,
    Document,
    DocumentFilter,
    DocumentRef,
    DocumentStatus,
    Hit,
    IdempotentReply,
    IndexWrite,
    SearchQuery,
    Vector,
)
from ingestq.model.job import Job, NewJob, Outcome, OutcomeKind
from ingestq.store.index_common import (
    IDEMPOTENCY_PRUNE_BATCH,
    Fenced,
    collection_from_row,
    commit_collection,
    document_from_row,
    enqueue_pairs,
    file_chunks,
    file_digest,
    hit_from_row,
)
from ingestq.store.postgres import insert
from ingestq.store.postgres.pool import Conn, PostgresPool
from ingestq.store.postgres.statements import Q as QUEUE_Q
from ingestq.store.postgres.statements import finish_params
from ingestq.store.queries import load_queries
from ingestq.store.vectors import pack_f32, unpack_f32

Q = load_queries("ingestq.store.postgres", "index_queries.sql")
_WORD = re.compile(r"\w+")
# HNSW candidates examined per search: at least k, and this many when metadata filters may drop rows.
EF_SEARCH_FILTERED = 200
EF_SEARCH_MAX = 1000  # pgvector's upper bound
_BUCKET_ROUNDS = 5


def tsquery(text: str) -> str | None:
    """Words of a free-text query OR-ed as a to_tsquery string (user text is never tsquery syntax)."""
    words = _WORD.findall(text)
    return " | ".join(f"'{w}'" for w in words) if words else None


def _vector_text(vector: Vector) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _template(name: str, coll_id: int, dimension: int) -> str:
    return Q[name].replace("{coll_id}", str(int(coll_id))).replace("{dim}", str(int(dimension)))


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def _same(value: Any) -> Any:
    """psycopg returns JSON decoded and timestamps as datetimes: nothing to convert."""
    return value


def _document(row: Sequence[Any]) -> Document:
    return document_from_row(row, _same, _same)


def _register_params(ref: DocumentRef, now: datetime) -> dict[str, Any]:
    return {
        "collection": ref.collection,
        "id": ref.id,
        "source": ref.source,
        "metadata": _json(ref.metadata, "document metadata"),
        "blob_id": ref.blob_id,
        "now": now,
    }


def _collection(row: Sequence[Any]) -> Collection:
    return collection_from_row(row, _same)


def _hit(collection: str, row: Sequence[Any]) -> Hit:
    return hit_from_row(collection, row, _same)


# Uploads up to this size are stored by one upsert holding the bytes; larger ones stream through COPY, so
# that neither side holds a whole large upload in one message.
INLINE_BLOB_BYTES = 1024**2


def _read_all(file: BinaryIO) -> bytes:
    file.seek(0)
    return file.read()


class PostgresIndex(PostgresPool):
    """The IndexStore half of PostgresStore, on the pool's connections (PostgresStore adds the queue)."""

    async def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _collection_row(self, name: str) -> tuple[Any, ...] | None:
        found = await self._rows(Q["collection_get"], {"name": name})
        return found[0] if found else None

    # --- collections and blobs ------------------------------------------------------------------------
    async def collection_ensure(self, name: str, model_id: str, dimension: int, now: datetime) -> Collection:
        if dimension <= 0 or dimension > 2000:
            raise ValueError(f"collection {name!r}: dimension must be 1..2000 (HNSW), not {dimension}")
        found = await self._collection_row(name)
        if found is not None:
            return _collection(found)
        params = {"name": name, "model_id": model_id, "dimension": dimension, "now": now}
        # pooled connections are in autocommit: the row commits, then the index builds without a
        # transaction block (CONCURRENTLY requires that); chunks committed meanwhile are indexed too
        async with self._connection() as conn:
            cur = await conn.execute(Q["collection_insert"], params)
            row = await cur.fetchone()
            if row is not None:
                await conn.execute(_template("hnsw_create", row[4], row[2]))
                return _collection(row)
        found = await self._collection_row(name)  # created concurrently: its creator builds the index
        assert found is not None
        return _collection(found)

    async def collection_get(self, name: str) -> Collection | None:
        row = await self._collection_row(name)
        return None if row is None else _collection(row)

    async def collection_list(self) -> list[Collection]:
        return [_collection(r) for r in await self._rows(Q["collection_list"])]

    async def blob_put(self, data: bytes, now: datetime) -> str:
        blob_id = hashlib.sha256(data).hexdigest()
        await self._rows_none(Q["blob_put"], {"id": blob_id, "data": data, "size": len(data), "now": now})
        return blob_id

    async def blob_put_file(self, file: BinaryIO, now: datetime) -> str:
        blob_id, size = await asyncio.to_thread(file_digest, file)
        if size <= INLINE_BLOB_BYTES:
            # One upsert, the bytes as a binary parameter: a round trip and a commit, where the stream
            # below takes three round trips and doubles the bytes as hex. Most uploads are this size.
            data = await asyncio.to_thread(_read_all, file)
            await self._rows_none(Q["blob_put"], {"id": blob_id, "data": data, "size": size, "now": now})
            return blob_id
        if await self._rows(Q["blob_exists"], {"id": blob_id}):
            # stored already: keep the bytes from the orphan sweep until their document is registered
            await self._rows_none(Q["blob_touch"], {"id": blob_id, "now": now})
            return blob_id
        async with self._connection() as conn:
            try:
                async with conn.transaction(), conn.cursor().copy(Q["blob_copy"]) as copy:
                    await copy.write(f"{blob_id}\t\\\\x".encode())  # `\\x`: a backslash escaped for COPY
                    for chunk in file_chunks(file):
                        await copy.write(chunk.hex().encode())
                    await copy.write(f"\t{size}\t{now.isoformat()}\n".encode())
            except UniqueViolation:
                pass  # the same bytes stored meanwhile by another upload: content-addressed, done
        return blob_id

    async def _rows_none(self, sql: str, params: dict[str, Any]) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount

    async def blob_get(self, blob_id: str) -> bytes | None:
        found = await self._rows(Q["blob_get"], {"id": blob_id})
        return bytes(found[0][0]) if found else None

    # --- documents ------------------------------------------------------------------------------------
    async def document_register(self, ref: DocumentRef, now: datetime) -> Document:
        return _document((await self._rows(Q["document_register"], _register_params(ref, now)))[0])

    async def document_enqueue(
        self, refs: Sequence[DocumentRef], jobs: Sequence[NewJob], now: datetime
    ) -> list[tuple[Document, Job]]:
        if not enqueue_pairs(len(refs), len(jobs)):
            return []
        # One pipeline: BEGIN, the registers and the job insert go out in one round trip, COMMIT in a
        # second (the insert reads its rows before it returns). One commit, so one WAL flush.
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            cursors = [await conn.execute(Q["document_register"], _register_params(r, now)) for r in refs]
            queued = await insert.insert(conn, jobs, now)
            docs = [_document(row) for cur in cursors for row in await cur.fetchall()]
        return list(zip(docs, queued, strict=True))

    async def document_get(self, collection: str, document_id: str) -> Document | None:
        found = await self._rows(Q["document_get"], {"collection": collection, "id": document_id})
        return _document(found[0]) if found else None

    async def document_by_content(self, collection: str, content_hash: str) -> Document | None:
        found = await self._rows(Q["document_by_content"], {"collection": collection, "hash": content_hash})
        return _document(found[0]) if found else None

    async def idempotency_get(self, key: str, now: datetime) -> IdempotentReply | None:
        found = await self._rows(Q["idempotency_get"], {"key": key, "now": now})
        return IdempotentReply(*found[0]) if found else None

    async def idempotency_put(self, reply: IdempotentReply, now: datetime) -> IdempotentReply:
        params = {
            "key": reply.key,
            "fingerprint": reply.fingerprint,
            "status": reply.status,
            "body": reply.body,
            "location": reply.location,
            "now": reply.created_at,
            "expires_at": reply.expires_at,
        }
        async with self._connection() as conn, conn.transaction():
            await conn.execute(Q["idempotency_prune"], {"now": now, "limit": IDEMPOTENCY_PRUNE_BATCH})
            await conn.execute(Q["idempotency_put"], params)
            cur = await conn.execute(Q["idempotency_get"], {"key": reply.key, "now": now})
            row = await cur.fetchone()
        assert row is not None  # just written, or kept because it had not expired
        return IdempotentReply(*row)

    async def document_list(self, flt: DocumentFilter) -> list[Document]:
        params = {
            "collection": flt.collection,
            "status": None if flt.status is None else DocumentStatus(flt.status).value,
            "after_id": flt.after_id,
            "after_collection": flt.after_collection,
            "limit": max(flt.limit, 0),
        }
        return [_document(r) for r in await self._rows(Q["document_list"], params)]

    async def document_counts(self, collection: str | None) -> dict[DocumentStatus, int]:
        counts = {s: 0 for s in DocumentStatus}
        for status, n in await self._rows(Q["document_counts"], {"collection": collection}):
            counts[DocumentStatus(status)] = n
        return counts

    async def document_delete(self, collection: str, document_id: str) -> bool:
        return await self._rows_none(Q["document_delete"], {"collection": collection, "id": document_id}) > 0

    async def document_token_count(self, collection: str, document_id: str) -> int:
        rows = await self._rows(Q["document_token_count"], {"collection": collection, "id": document_id})
        return int(rows[0][0])

    async def document_chunks(
        self, collection: str, document_id: str, with_vectors: bool = False
    ) -> list[ChunkRecord]:
        params = {"collection": collection, "id": document_id, "with_vectors": with_vectors}
        return [
            ChunkRecord(
                id=cid,
                ordinal=ordinal,
                text=text,
                body=body,
                heading_path=tuple(heading_path),
                page=page,
                page_end=page_end,
                token_count=token_count,
                text_hash=text_hash,
                embedding=None if embedding is None else [float(x) for x in json.loads(embedding)],
            )
            for (
                cid,
                ordinal,
                text,
                body,
                heading_path,
                page,
                page_end,
                token_count,
                text_hash,
                embedding,
            ) in (await self._rows(Q["document_chunks"], params))
        ]

    async def _fence(self, conn: Conn, outcome: Outcome, now: datetime) -> None:
        """Apply the job's outcome with the queue's own statement; raise Fenced if it did not apply."""
        cur = await conn.execute(QUEUE_Q["job_finish_many"], finish_params([outcome], now))
        if outcome.job_id not in {r[0] for r in await cur.fetchall()}:
            raise Fenced

    async def document_commit(self, write: IndexWrite, outcome: Outcome, now: datetime) -> bool:
        coll = commit_collection(write, await self._collection_row(write.collection))
        coll_id = coll[4]
        chunks = write.chunks
        key = {"collection": write.collection, "id": write.document_id, "now": now}
        try:
            async with self._connection() as conn, conn.transaction():
                await self._fence(conn, outcome, now)
                cur = await conn.execute(Q["document_lock_for_commit"], key)
                row = await cur.fetchone()
                assert row is not None
                doc_key = row[0]
                await conn.execute(Q["chunks_delete_document"], {"doc_key": doc_key})
                if chunks:
                    await conn.execute(
                        Q["chunks_insert"],
                        {
                            "doc_key": doc_key,
                            "coll_id": coll_id,
                            "ids": [c.id for c in chunks],
                            "ordinals": [c.ordinal for c in chunks],
                            "texts": [c.text for c in chunks],
                            "bodies": [c.body for c in chunks],
                            "heading_paths": [_json(list(c.heading_path), "heading path") for c in chunks],
                            "pages": [c.page for c in chunks],
                            "page_ends": [c.page_end for c in chunks],
                            "token_counts": [c.token_count for c in chunks],
                            "text_hashes": [c.text_hash for c in chunks],
                            "embeddings": [_vector_text(c.embedding or []) for c in chunks],
                        },
                    )
                await conn.execute(
                    Q["document_indexed"],
                    {
                        "doc_key": doc_key,
                        "chunk_count": len(chunks),
                        "title": write.title,
                        "media_type": write.media_type,
                        "content_hash": write.content_hash,
                        "model_id": write.model_id,
                        "settings_hash": write.settings_hash,
                        "metadata": _json(write.metadata, "document metadata"),
                        "now": now,
                    },
                )
        except Fenced:
            return False
        await self._after_outcome(outcome)
        return True

    async def _after_outcome(self, outcome: Outcome | None) -> None:
        if outcome is not None and outcome.kind in (OutcomeKind.RETRY, OutcomeKind.RELEASED):
            await self._notify()  # the job is back in the queue: wake the workers

    async def document_mark(
        self,
        collection: str,
        document_id: str,
        status: DocumentStatus,
        error: str | None,
        outcome: Outcome | None,
        now: datetime,
    ) -> bool:
        params = {
            "collection": collection,
            "id": document_id,
            "status": DocumentStatus(status).value,
            "error": error,
            "now": now,
        }
        try:
            async with self._connection() as conn, conn.transaction():
                if outcome is not None:
                    await self._fence(conn, outcome, now)
                cur = await conn.execute(Q["document_mark"], params)
                marked = cur.rowcount > 0
        except Fenced:
            return False
        await self._after_outcome(outcome)
        return marked or outcome is not None

    async def documents_stale(
        self, collection: str, model_id: str, settings_hash: str, limit: int
    ) -> list[Document]:
        params = {
            "collection": collection,
            "model_id": model_id,
            "settings_hash": settings_hash,
            "limit": limit,
        }
        return [_document(r) for r in await self._rows(Q["documents_stale"], params)]

    # --- embedding cache and rate buckets -------------------------------------------------------------
    async def embed_cache_get(self, model_id: str, keys: Sequence[str]) -> dict[str, Vector]:
        if not keys:
            return {}
        rows = await self._rows(Q["embed_cache_get"], {"model_id": model_id, "keys": list(keys)})
        return {k: unpack_f32(bytes(v)) for k, v in rows}

    async def embed_cache_put(self, model_id: str, items: dict[str, Vector], now: datetime) -> None:
        if not items:
            return
        params = {
            "model_id": model_id,
            "keys": list(items),
            "vectors": [pack_f32(v) for v in items.values()],
            "now": now,
        }
        await self._rows_none(Q["embed_cache_put"], params)

    async def blob_prune(self, before: datetime, limit: int = 1000) -> int:
        return await self._rows_none(Q["blob_prune"], {"before": before, "limit": limit})

    async def embed_cache_prune(self, before: datetime, limit: int = 10_000) -> int:
        return await self._rows_none(Q["embed_cache_prune"], {"before": before, "limit": limit})

    async def rate_bucket_update(
        self, key: str, update: Callable[[BucketRow | None], BucketRow]
    ) -> BucketRow:
        for _ in range(_BUCKET_ROUNDS):
            async with self._connection() as conn, conn.transaction():
                cur = await conn.execute(Q["rate_bucket_lock"], {"key": key})
                found = await cur.fetchone()
                new = update(None if found is None else BucketRow(found[0], found[1], found[2]))
                params = {
                    "key": key,
                    "requests": new.requests,
                    "tokens": new.tokens,
                    "updated_at": new.updated_at,
                }
                if found is not None:
                    await conn.execute(Q["rate_bucket_update"], params)
                    return new
                cur = await conn.execute(Q["rate_bucket_insert"], params)
                if await cur.fetchone() is not None:
                    return new
            # another worker created the bucket between our read and insert: lock its row this time
        raise StoreError(f"rate bucket {key!r}: could not create or lock its row")

    # --- search ---------------------------------------------------------------------------------------
    async def search_vector(self, query: SearchQuery) -> list[Hit]:
        if query.vector is None or query.k <= 0:
            return []
        coll = await self._collection_row(query.collection)
        if coll is None:
            return []
        dimension, coll_id = coll[2], coll[4]
        if len(query.vector) != dimension:
            raise ValueError(
                f"query vector has {len(query.vector)} dimensions; collection {query.collection!r} "
                f"has {dimension}"
            )
        ef = max(query.k, EF_SEARCH_FILTERED if query.metadata else 40)
        params = {
            "vector": _vector_text(query.vector),
            "filters": _json(query.metadata, "metadata filter"),
            "k": query.k,
        }
        async with self._connection() as conn, conn.transaction():
            await conn.execute(Q["search_settings"], {"ef": str(min(ef, EF_SEARCH_MAX))})
            sql = _template("search_vector", coll_id, dimension)
            rows = await (await conn.execute(sql, params)).fetchall()
            if len(rows) < query.k:
                exact = _template("search_vector_exact", coll_id, dimension)
                rows = await (await conn.execute(exact, params)).fetchall()
        return [_hit(query.collection, r) for r in rows]

    async def search_text(self, query: SearchQuery) -> list[Hit]:
        q = None if query.text is None else tsquery(query.text)
        if q is None or query.k <= 0:
            return []
        coll = await self._collection_row(query.collection)
        if coll is None:
            return []
        params = {
            "tsquery": q,
            "coll_id": coll[4],
            "filters": _json(query.metadata, "metadata filter"),
            "k": query.k,
        }
        return [_hit(query.collection, r) for r in await self._rows(Q["search_text"], params)]
