"""The `IndexStore` half of SqliteStore: each call runs `IndexEngine` on the store's own thread.

`IndexEngine` (and the document model it returns) is imported on the first document call: a worker that
only runs plain jobs never needs it, and every worker imports this module before its first claim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast

from ingestq.store.sqlite.base import SqliteBase

if TYPE_CHECKING:
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
    from ingestq.model.job import Outcome
    from ingestq.store.sqlite.index_engine import IndexEngine

R = TypeVar("R")


class SqliteIndex(SqliteBase):
    """The IndexStore half of SqliteStore, on the base's Engine and thread (SqliteStore adds the queue)."""

    _index_engine: IndexEngine | None = None

    def _ix(self) -> IndexEngine:
        """On the store's thread: the index engine of the current connection (loads sqlite-vec once)."""
        engine = self._e
        ix = self._index_engine
        if ix is None or ix.e is not engine:
            from ingestq.store.sqlite.index_engine import IndexEngine

            ix = self._index_engine = IndexEngine(engine)
        return ix

    async def _ix_run(self, call: Callable[[IndexEngine], R]) -> R:
        return await self._run(lambda: call(self._ix()))

    async def _ix_point(self, call: Callable[[IndexEngine], R]) -> R:
        """A bounded read of the index tables by key, on the loop's thread when it can be (reader.py)."""
        reader = self._reader
        if reader is not None:
            if not reader.has_index:
                await self._run(reader.load_index)  # sqlite-vec and numpy load off the loop, once
            ran, result = reader.try_index_read(call)
            if ran:
                return cast(R, result)
        return await self._ix_run(call)

    async def collection_ensure(self, name: str, model_id: str, dimension: int, now: datetime) -> Collection:
        return await self._ix_run(lambda ix: ix.collection_ensure(name, model_id, dimension, now))

    async def collection_get(self, name: str) -> Collection | None:
        return await self._ix_run(lambda ix: ix.collection_get(name))

    async def collection_list(self) -> list[Collection]:
        return await self._ix_run(lambda ix: ix.collection_list())

    async def blob_put(self, data: bytes, now: datetime) -> str:
        return await self._ix_run(lambda ix: ix.blob_put(data, now))

    async def blob_put_file(self, file: BinaryIO, now: datetime) -> str:
        return await self._ix_run(lambda ix: ix.blob_put_file(file, now))

    async def blob_get(self, blob_id: str) -> bytes | None:
        return await self._ix_run(lambda ix: ix.blob_get(blob_id))

    async def document_register(self, ref: DocumentRef, now: datetime) -> Document:
        return await self._ix_run(lambda ix: ix.document_register(ref, now))

    async def document_get(self, collection: str, document_id: str) -> Document | None:
        return await self._ix_point(lambda ix: ix.document_get(collection, document_id))

    async def document_list(self, flt: DocumentFilter) -> list[Document]:
        return await self._ix_run(lambda ix: ix.document_list(flt))

    async def document_by_content(self, collection: str, content_hash: str) -> Document | None:
        return await self._ix_point(lambda ix: ix.document_by_content(collection, content_hash))

    async def idempotency_get(self, key: str, now: datetime) -> IdempotentReply | None:
        return await self._ix_run(lambda ix: ix.idempotency_get(key, now))

    async def idempotency_put(self, reply: IdempotentReply, now: datetime) -> IdempotentReply:
        return await self._ix_run(lambda ix: ix.idempotency_put(reply, now))

    async def document_counts(self, collection: str | None) -> dict[DocumentStatus, int]:
        return await self._ix_run(lambda ix: ix.document_counts(collection))

    async def document_delete(self, collection: str, document_id: str) -> bool:
        return await self._ix_run(lambda ix: ix.document_delete(collection, document_id))

    async def document_chunks(
        self, collection: str, document_id: str, with_vectors: bool = False
    ) -> list[ChunkRecord]:
        return await self._ix_run(lambda ix: ix.document_chunks(collection, document_id, with_vectors))

    async def document_token_count(self, collection: str, document_id: str) -> int:
        return await self._ix_point(lambda ix: ix.document_token_count(collection, document_id))

    async def document_commit(self, write: IndexWrite, outcome: Outcome, now: datetime) -> bool:
        return await self._ix_run(lambda ix: ix.document_commit(write, outcome, now))

    async def document_mark(
        self,
        collection: str,
        document_id: str,
        status: DocumentStatus,
        error: str | None,
        outcome: Outcome | None,
        now: datetime,
    ) -> bool:
        return await self._ix_run(
            lambda ix: ix.document_mark(collection, document_id, status, error, outcome, now)
        )

    async def documents_stale(
        self, collection: str, model_id: str, settings_hash: str, limit: int
    ) -> list[Document]:
        return await self._ix_run(lambda ix: ix.documents_stale(collection, model_id, settings_hash, limit))

    async def embed_cache_get(self, model_id: str, keys: Sequence[str]) -> dict[str, Vector]:
        return await self._ix_run(lambda ix: ix.embed_cache_get(model_id, keys))

    async def embed_cache_put(self, model_id: str, items: dict[str, Vector], now: datetime) -> None:
        await self._ix_run(lambda ix: ix.embed_cache_put(model_id, items, now))

    async def blob_prune(self, before: datetime, limit: int = 1000) -> int:
        return await self._ix_run(lambda ix: ix.blob_prune(before, limit))

    async def embed_cache_prune(self, before: datetime, limit: int = 10_000) -> int:
        return await self._ix_run(lambda ix: ix.embed_cache_prune(before, limit))

    async def rate_bucket_update(
        self, key: str, update: Callable[[BucketRow | None], BucketRow]
    ) -> BucketRow:
        return await self._ix_run(lambda ix: ix.rate_bucket_update(key, update))

    async def search_vector(self, query: SearchQuery) -> list[Hit]:
        return await self._ix_run(lambda ix: ix.search_vector(query))

    async def search_text(self, query: SearchQuery) -> list[Hit]:
        return await self._ix_run(lambda ix: ix.search_text(query))
