"""The synchronous half of the SQLite index store, on the queue engine's own connection and thread.

sqlite-vec is loaded into that connection on first use. Writes use the engine's `BEGIN IMMEDIATE`
transactions; `document_commit` applies the job's outcome with the engine's own fenced statements in
the same transaction as the chunk swap, so a stale worker changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO

import apsw

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
from ingestq.model.job import Job, NewJob, Outcome
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
from ingestq.store.queries import load_queries
from ingestq.store.sqlite.engine import Engine
from ingestq.store.sqlite.rows import dt, dumps, ts
from ingestq.store.vectors import pack_f32, unpack_f32

Q = load_queries("ingestq.store.sqlite", "index_queries.sql")
_WORD = re.compile(r"\w+")
# A metadata filter can drop KNN rows; fetch this many times k first, and more only if still short.
OVERFETCH = 10
KNN_MAX_K = 4096  # sqlite-vec refuses a larger k


def fts_match(text: str) -> str | None:
    """Words of a free-text query as an FTS5 OR-query of quoted terms (user text is never FTS syntax)."""
    words = _WORD.findall(text)
    return " OR ".join(f'"{w}"' for w in words) if words else None


def _vec_table(vec_table_id: int) -> str:
    return f"ingestq_vec_{int(vec_table_id)}"


def _sql(name: str, vec_table_id: int) -> str:
    return Q[name].replace("{vec}", _vec_table(vec_table_id))


def _document(row: Sequence[Any]) -> Document:
    return document_from_row(row, json.loads, dt)


def _collection(row: Sequence[Any]) -> Collection:
    return collection_from_row(row, dt)


def _hit(collection: str, row: Sequence[Any]) -> Hit:
    return hit_from_row(collection, row, json.loads)


def _reply(row: Sequence[Any]) -> IdempotentReply:
    key, fingerprint, status, body, location, created, expires = row
    return IdempotentReply(key, fingerprint, status, body, location, dt(created), dt(expires))


def _all(cur: apsw.Cursor, sql: str, params: Any = None) -> list[Any]:
    found: list[Any] = cur.execute(sql, params).fetchall()
    return found


class IndexEngine:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        conn = engine.conn
        # imported here: the sqlite_vec package imports numpy, which a queue-only process never needs
        import sqlite_vec

        conn.enable_load_extension(True)
        try:
            conn.load_extension(sqlite_vec.loadable_path())
        except apsw.Error as exc:
            raise StoreError(f"cannot load sqlite-vec into {engine.label}: {exc}") from None
        finally:
            conn.enable_load_extension(False)

    def _rows(self, sql: str, params: Any = None) -> list[Any]:
        return self.e.read(sql, params)

    # --- collections and blobs ------------------------------------------------------------------------
    def _collection_row(self, name: str) -> Any | None:
        found = self._rows(Q["collection_get"], {"name": name})
        return found[0] if found else None

    def collection_ensure(self, name: str, model_id: str, dimension: int, now: datetime) -> Collection:
        if dimension <= 0:
            raise ValueError(f"collection {name!r}: dimension must be positive, not {dimension}")
        with self.e.write() as cur:
            params = {"name": name, "model_id": model_id, "dimension": dimension, "now": ts(now)}
            cur.execute(Q["collection_insert"], params)
            row = _all(cur, Q["collection_get"], {"name": name})[0]
            vec_sql = _sql("vec_create", row[4]).replace("{dimension}", str(int(row[2])))
            cur.execute(vec_sql)
        return _collection(row)

    def collection_get(self, name: str) -> Collection | None:
        row = self._collection_row(name)
        return None if row is None else _collection(row)

    def collection_list(self) -> list[Collection]:
        return [_collection(r) for r in self._rows(Q["collection_list"])]

    def blob_put(self, data: bytes, now: datetime) -> str:
        blob_id = hashlib.sha256(data).hexdigest()
        with self.e.write() as cur:
            cur.execute(Q["blob_put"], {"id": blob_id, "data": data, "size": len(data), "now": ts(now)})
        return blob_id

    def blob_put_file(self, file: BinaryIO, now: datetime) -> str:
        """A zeroblob row, then the file written into it a chunk at a time (SQLite's incremental blob
        I/O), in one transaction: memory stays at one chunk plus the page cache, whatever the size."""
        blob_id, size = file_digest(file)
        with self.e.write() as cur:
            rows = _all(cur, Q["blob_put_empty"], {"id": blob_id, "size": size, "now": ts(now)})
            if rows:  # new content
                with self.e.conn.blob_open("main", "ingestq_blobs", "data", rows[0][0], True) as blob:
                    for chunk in file_chunks(file):
                        blob.write(chunk)
            else:  # the same bytes stored already: keep them from the orphan sweep until registered
                cur.execute(Q["blob_touch"], {"id": blob_id, "now": ts(now)})
        return blob_id

    def blob_prune(self, before: datetime, limit: int) -> int:
        with self.e.write() as cur:
            cur.execute(Q["blob_prune"], {"before": ts(before), "limit": limit})
            return int(self.e.conn.changes())

    def blob_get(self, blob_id: str) -> bytes | None:
        found = self._rows(Q["blob_get"], {"id": blob_id})
        return bytes(found[0][0]) if found else None

    # --- documents ------------------------------------------------------------------------------------
    def document_register(self, ref: DocumentRef, now: datetime) -> Document:
        with self.e.write() as cur:
            return self._register(cur, ref, now)

    def document_enqueue(
        self, refs: Sequence[DocumentRef], jobs: Sequence[NewJob], now: datetime
    ) -> list[tuple[Document, Job]]:
        if not enqueue_pairs(len(refs), len(jobs)):
            return []
        with self.e.write() as cur:
            docs = [self._register(cur, ref, now) for ref in refs]
            return list(zip(docs, self.e.insert_jobs(cur, jobs, now), strict=True))

    def _register(self, cur: apsw.Cursor, ref: DocumentRef, now: datetime) -> Document:
        params = {
            "collection": ref.collection,
            "id": ref.id,
            "source": ref.source,
            "metadata": dumps(ref.metadata, "metadata"),
            "blob_id": ref.blob_id,
            "now": ts(now),
        }
        cur.execute(Q["document_register"], params)
        return _document(_all(cur, Q["document_get"], {"collection": ref.collection, "id": ref.id})[0])

    def document_get(self, collection: str, document_id: str) -> Document | None:
        found = self._rows(Q["document_get"], {"collection": collection, "id": document_id})
        return _document(found[0]) if found else None

    def document_by_content(self, collection: str, content_hash: str) -> Document | None:
        found = self._rows(Q["document_by_content"], {"collection": collection, "hash": content_hash})
        return _document(found[0]) if found else None

    def idempotency_get(self, key: str, now: datetime) -> IdempotentReply | None:
        found = self._rows(Q["idempotency_get"], {"key": key, "now": ts(now)})
        return _reply(found[0]) if found else None

    def idempotency_put(self, reply: IdempotentReply, now: datetime) -> IdempotentReply:
        params = {
            "key": reply.key,
            "fingerprint": reply.fingerprint,
            "status": reply.status,
            "body": reply.body,
            "location": reply.location,
            "now": ts(reply.created_at),
            "expires_at": ts(reply.expires_at),
        }
        with self.e.write() as cur:
            cur.execute(Q["idempotency_prune"], {"now": ts(now), "limit": IDEMPOTENCY_PRUNE_BATCH})
            cur.execute(Q["idempotency_put"], params)
            kept = _all(cur, Q["idempotency_get"], {"key": reply.key, "now": ts(now)})
        return _reply(kept[0])

    def document_list(self, flt: DocumentFilter) -> list[Document]:
        params = {
            "collection": flt.collection,
            "status": None if flt.status is None else DocumentStatus(flt.status).value,
            "after_id": flt.after_id,
            "after_collection": flt.after_collection,
            "limit": flt.limit,
        }
        return [_document(r) for r in self._rows(Q["document_list"], params)]

    def document_counts(self, collection: str | None) -> dict[DocumentStatus, int]:
        counts = {s: 0 for s in DocumentStatus}
        for status, n in self._rows(Q["document_counts"], {"collection": collection}):
            counts[DocumentStatus(status)] = n
        return counts

    def _drop_chunks(self, cur: apsw.Cursor, doc_key: int, vec_table_id: int | None) -> None:
        if vec_table_id is not None:
            cur.execute(_sql("vec_delete_document", vec_table_id), {"doc_key": doc_key})
        cur.execute(Q["chunks_delete_document"], {"doc_key": doc_key})  # FTS rows follow by trigger

    def document_delete(self, collection: str, document_id: str) -> bool:
        with self.e.write() as cur:
            found = _all(cur, Q["document_key"], {"collection": collection, "id": document_id})
            if not found:
                return False
            coll = _all(cur, Q["collection_get"], {"name": collection})
            self._drop_chunks(cur, found[0][0], coll[0][4] if coll else None)
            cur.execute(Q["document_delete"], {"doc_key": found[0][0]})
        return True

    def document_token_count(self, collection: str, document_id: str) -> int:
        return int(self._rows(Q["document_token_count"], {"collection": collection, "id": document_id})[0][0])

    def document_chunks(self, collection: str, document_id: str, with_vectors: bool) -> list[ChunkRecord]:
        coll = self._collection_row(collection) if with_vectors else None
        out: list[ChunkRecord] = []
        for row in self._rows(Q["document_chunks"], {"collection": collection, "id": document_id}):
            rowid, cid, ordinal, text, body, heading_path, page, page_end, token_count, text_hash = row
            embedding: Vector | None = None
            if coll is not None:
                got = self._rows(_sql("vec_get", coll[4]), {"rowid": rowid})
                embedding = unpack_f32(got[0][0]) if got else None
            out.append(
                ChunkRecord(
                    id=cid,
                    ordinal=ordinal,
                    text=text,
                    body=body,
                    heading_path=tuple(json.loads(heading_path)),
                    page=page,
                    page_end=page_end,
                    token_count=token_count,
                    text_hash=text_hash,
                    embedding=embedding,
                )
            )
        return out

    def document_commit(self, write: IndexWrite, outcome: Outcome, now: datetime) -> bool:
        coll = commit_collection(write, self._collection_row(write.collection))
        vec_table_id = coll[4]
        chunk_rows, vectors = [], []
        for c in write.chunks:
            assert c.embedding is not None  # check_commit refused chunks without one
            chunk_rows.append(
                (
                    c.id,
                    c.ordinal,
                    c.text,
                    c.body,
                    dumps(list(c.heading_path)),
                    c.page,
                    c.page_end,
                    c.token_count,
                    c.text_hash,
                )
            )
            vectors.append(pack_f32(c.embedding))
        now_ts = ts(now)
        key = {"collection": write.collection, "id": write.document_id}
        try:
            with self.e.write() as cur:
                if outcome.job_id not in self.e.apply_outcomes(cur, [outcome], now):
                    raise Fenced
                cur.execute(Q["document_lock_for_commit"], {**key, "now": now_ts})
                doc_key = _all(cur, Q["document_key"], key)[0][0]
                self._drop_chunks(cur, doc_key, vec_table_id)
                rowids = [
                    r[0] for r in cur.executemany(Q["chunks_insert"], [(doc_key, *r) for r in chunk_rows])
                ]
                if rowids:
                    cur.executemany(_sql("vec_insert", vec_table_id), list(zip(rowids, vectors, strict=True)))
                cur.execute(
                    Q["document_indexed"],
                    {
                        "doc_key": doc_key,
                        "chunk_count": len(chunk_rows),
                        "title": write.title,
                        "media_type": write.media_type,
                        "content_hash": write.content_hash,
                        "model_id": write.model_id,
                        "settings_hash": write.settings_hash,
                        "metadata": dumps(write.metadata, "metadata"),
                        "now": now_ts,
                    },
                )
        except Fenced:
            return False
        return True

    def document_mark(
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
            "now": ts(now),
        }
        try:
            with self.e.write() as cur:
                if outcome is not None and outcome.job_id not in self.e.apply_outcomes(cur, [outcome], now):
                    raise Fenced
                marked = _all(cur, Q["document_mark"], params)
        except Fenced:
            return False
        return bool(marked) or outcome is not None

    def documents_stale(
        self, collection: str, model_id: str, settings_hash: str, limit: int
    ) -> list[Document]:
        params = {
            "collection": collection,
            "model_id": model_id,
            "settings_hash": settings_hash,
            "limit": limit,
        }
        return [_document(r) for r in self._rows(Q["documents_stale"], params)]

    # --- embedding cache and rate buckets -------------------------------------------------------------
    def embed_cache_get(self, model_id: str, keys: Sequence[str]) -> dict[str, Vector]:
        if not keys:
            return {}
        rows = self._rows(Q["embed_cache_get"], {"model_id": model_id, "keys": dumps(list(keys))})
        return {k: unpack_f32(v) for k, v in rows}

    def embed_cache_put(self, model_id: str, items: dict[str, Vector], now: datetime) -> None:
        if not items:
            return
        now_ts = ts(now)
        with self.e.write() as cur:
            cur.executemany(
                Q["embed_cache_put"], [(model_id, k, pack_f32(v), now_ts) for k, v in items.items()]
            )

    def embed_cache_prune(self, before: datetime, limit: int) -> int:
        with self.e.write() as cur:
            cur.execute(Q["embed_cache_prune"], {"before": ts(before), "limit": limit})
            return int(self.e.conn.changes())

    def rate_bucket_update(self, key: str, update: Callable[[BucketRow | None], BucketRow]) -> BucketRow:
        # BEGIN IMMEDIATE holds the write lock from the read to the write: other processes wait.
        with self.e.write() as cur:
            found = _all(cur, Q["rate_bucket_lock"], {"key": key})
            current = None if not found else BucketRow(found[0][0], found[0][1], dt(found[0][2]))
            new = update(current)
            cur.execute(
                Q["rate_bucket_put"],
                {
                    "key": key,
                    "requests": new.requests,
                    "tokens": new.tokens,
                    "updated_at": ts(new.updated_at),
                },
            )
        return new

    # --- search ---------------------------------------------------------------------------------------
    def search_vector(self, query: SearchQuery) -> list[Hit]:
        if query.vector is None or query.k <= 0:
            return []
        coll = self._collection_row(query.collection)
        if coll is None:
            return []
        dimension, vec_table_id = coll[2], coll[4]
        if len(query.vector) != dimension:
            raise ValueError(
                f"query vector has {len(query.vector)} dimensions; collection {query.collection!r} "
                f"has {dimension}"
            )
        params: dict[str, Any] = {
            "vector": pack_f32(query.vector),
            "collection": query.collection,
            "filters": dumps(query.metadata, "metadata filter"),
            "k": query.k,
        }
        fetch = query.k if not query.metadata else query.k * OVERFETCH
        sql = _sql("search_vector", vec_table_id)
        total: int | None = None
        while True:
            params["fetch"] = min(fetch, KNN_MAX_K)
            rows = self._rows(sql, params)
            if len(rows) >= query.k or not query.metadata or params["fetch"] >= KNN_MAX_K:
                return [_hit(query.collection, r) for r in rows]
            # filters dropped rows: fetch more, unless the KNN already returned every vector
            if total is None:
                total = int(self._rows(_sql("vec_count", vec_table_id))[0][0])
            if params["fetch"] >= total:
                return [_hit(query.collection, r) for r in rows]
            fetch *= 4

    def search_text(self, query: SearchQuery) -> list[Hit]:
        match = None if query.text is None else fts_match(query.text)
        if match is None or query.k <= 0:
            return []
        params = {
            "match": match,
            "collection": query.collection,
            "filters": dumps(query.metadata, "metadata filter"),
            "k": query.k,
        }
        return [_hit(query.collection, r) for r in self._rows(Q["search_text"], params)]
