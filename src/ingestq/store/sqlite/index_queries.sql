-- Named queries of the SQLite index store (documents, chunks, vectors, full text, cache, buckets); the
-- same operation has the same name as in store/postgres/index_queries.sql (see tests/unit/test_queries.py).
-- Vector statements name the collection's vec0 table, so they are templates: {vec} is replaced by
-- the table name read from ingestq_collections (never by caller text).

-- name: collection_get
SELECT name, model_id, dimension, created_at, vec_table_id FROM ingestq_collections WHERE name = :name

-- name: collection_list
SELECT name, model_id, dimension, created_at, vec_table_id FROM ingestq_collections ORDER BY name

-- name: collection_insert
INSERT INTO ingestq_collections (name, model_id, dimension, created_at)
VALUES (:name, :model_id, :dimension, :now)
ON CONFLICT (name) DO NOTHING

-- name: vec_create
-- cosine: scores are 1 - cosine distance, the same on both backends
CREATE VIRTUAL TABLE IF NOT EXISTS {vec} USING vec0(embedding float[{dimension}] distance_metric=cosine)

-- name: blob_put
-- The same bytes again: created_at is refreshed (at most every 5 minutes: in SQLite an update rewrites
-- the whole row, the bytes too), so the orphan sweep (blob_prune, grace BLOB_GRACE) cannot take a blob
-- between this put and the registration of the document that names it.
INSERT INTO ingestq_blobs (id, data, size, created_at) VALUES (:id, :data, :size, :now)
ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at
WHERE ingestq_blobs.created_at < excluded.created_at - 300

-- name: blob_prune
-- Uploaded bytes no document names any more (deleted, or replaced by a new upload)
DELETE FROM ingestq_blobs WHERE id IN (
    SELECT b.id FROM ingestq_blobs b
    WHERE b.created_at < :before
      AND NOT EXISTS (SELECT 1 FROM ingestq_documents d WHERE d.blob_id = b.id)
    LIMIT :limit
)

-- name: blob_put_empty
-- blob_put_file: the row with a zeroblob of the right size, filled afterwards by incremental blob I/O (the
-- table has rowids for this since migration 6).
INSERT INTO ingestq_blobs (id, data, size, created_at) VALUES (:id, zeroblob(:size), :size, :now)
ON CONFLICT (id) DO NOTHING
RETURNING rowid

-- name: blob_touch
-- blob_put_file of bytes stored already: blob_put's refresh of created_at (same throttle, same reason).
UPDATE ingestq_blobs SET created_at = :now WHERE id = :id AND created_at < :now - 300

-- name: blob_get
SELECT data FROM ingestq_blobs WHERE id = :id

-- name: document_register
INSERT INTO ingestq_documents (collection, id, source, status, metadata, blob_id, created_at, updated_at)
VALUES (:collection, :id, :source, 'pending', :metadata, :blob_id, :now, :now)
ON CONFLICT (collection, id) DO UPDATE SET
    source = excluded.source,
    status = 'pending',
    metadata = json_patch(metadata, excluded.metadata),
    blob_id = excluded.blob_id,
    error = NULL,
    updated_at = excluded.updated_at

-- name: document_get
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents WHERE collection = :collection AND id = :id

-- name: document_by_content
-- the collection's document holding these bytes: an upload whose latest bytes they are (blob ids are the
-- sha256), or a document read from a path or URL whose served version was built from them. Each branch is
-- worked out apart (MATERIALIZED), by its own index: given `ORDER BY id` over the compound select, the
-- planner merged both branches along the (collection, id) key instead, reading every document of the
-- collection for each upload (its cost grew with the collection: half the upload path's CPU at 10,000).
WITH found AS MATERIALIZED (
    SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
           model_id, settings_hash, error, blob_id, created_at, updated_at
    FROM ingestq_documents
    WHERE collection = :collection AND blob_id = :hash
    UNION ALL
    SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
           model_id, settings_hash, error, blob_id, created_at, updated_at
    FROM ingestq_documents
    WHERE collection = :collection AND content_hash = :hash AND blob_id IS NULL
)
SELECT * FROM found ORDER BY id LIMIT 1

-- name: document_list
-- keyset pagination by (id, collection): within a collection, the (collection, id) unique index
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE (:collection IS NULL OR collection = :collection)
  AND (:status IS NULL OR status = :status)
  AND (:after_id IS NULL OR id > :after_id
       OR (id = :after_id AND :after_collection IS NOT NULL AND collection > :after_collection))
ORDER BY id, collection
LIMIT :limit

-- name: document_counts
SELECT status, count(*) FROM ingestq_documents
WHERE (:collection IS NULL OR collection = :collection)
GROUP BY status

-- name: document_key
SELECT doc_key FROM ingestq_documents WHERE collection = :collection AND id = :id

-- name: document_delete
DELETE FROM ingestq_documents WHERE doc_key = :doc_key

-- name: vec_delete_document
DELETE FROM {vec} WHERE rowid IN (SELECT rowid FROM ingestq_chunks WHERE doc_key = :doc_key)

-- name: chunks_delete_document
DELETE FROM ingestq_chunks WHERE doc_key = :doc_key

-- name: document_lock_for_commit
-- a commit for a document nobody registered still leaves one row (source = its id); the commit's
-- BEGIN IMMEDIATE already holds the database's write lock, so unlike PostgreSQL nothing is locked here
INSERT INTO ingestq_documents (collection, id, source, status, created_at, updated_at)
VALUES (:collection, :id, :id, 'pending', :now, :now)
ON CONFLICT (collection, id) DO NOTHING

-- name: chunks_insert
INSERT INTO ingestq_chunks
    (doc_key, id, ordinal, text, body, heading_path, page, page_end, token_count, text_hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING rowid

-- name: vec_insert
INSERT INTO {vec} (rowid, embedding) VALUES (?, ?)

-- name: document_indexed
UPDATE ingestq_documents SET
    status = 'indexed',
    version = version + 1,
    chunk_count = :chunk_count,
    title = :title,
    media_type = :media_type,
    content_hash = :content_hash,
    model_id = :model_id,
    settings_hash = :settings_hash,
    metadata = json_patch(metadata, :metadata),
    error = NULL,
    updated_at = :now
WHERE doc_key = :doc_key

-- name: document_mark
UPDATE ingestq_documents SET status = :status, error = :error, updated_at = :now
WHERE collection = :collection AND id = :id
RETURNING doc_key

-- name: documents_stale
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE collection = :collection AND status = 'indexed'
  AND (model_id IS NOT :model_id OR settings_hash IS NOT :settings_hash)
ORDER BY id
LIMIT :limit

-- name: document_chunks
SELECT c.rowid, c.id, c.ordinal, c.text, c.body, c.heading_path, c.page, c.page_end, c.token_count,
       c.text_hash
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE d.collection = :collection AND d.id = :id
ORDER BY c.ordinal

-- name: document_token_count
SELECT coalesce(sum(c.token_count), 0)
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE d.collection = :collection AND d.id = :id

-- name: vec_get
SELECT embedding FROM {vec} WHERE rowid = :rowid

-- name: embed_cache_get
SELECT c.key, c.vector FROM ingestq_embed_cache c
WHERE c.model_id = :model_id AND c.key IN (SELECT value FROM json_each(:keys))

-- name: embed_cache_put
INSERT INTO ingestq_embed_cache (model_id, key, vector, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (model_id, key) DO UPDATE SET vector = excluded.vector, created_at = excluded.created_at

-- name: embed_cache_prune
-- WITHOUT ROWID: rows are named by their primary key
DELETE FROM ingestq_embed_cache WHERE (model_id, key) IN (
    SELECT model_id, key FROM ingestq_embed_cache WHERE created_at < :before LIMIT :limit
)

-- name: rate_bucket_lock
-- read under the caller's BEGIN IMMEDIATE, which holds the write lock (PostgreSQL: FOR UPDATE)
SELECT requests, tokens, updated_at FROM ingestq_rate_buckets WHERE key = :key

-- name: rate_bucket_put
INSERT INTO ingestq_rate_buckets (key, requests, tokens, updated_at)
VALUES (:key, :requests, :tokens, :updated_at)
ON CONFLICT (key) DO UPDATE SET
    requests = excluded.requests, tokens = excluded.tokens, updated_at = excluded.updated_at

-- name: vec_count
SELECT count(*) FROM {vec}

-- name: search_vector
-- KNN on the vec0 table (k = :fetch, more than k when metadata filters may drop rows), then the
-- collection's documents and the metadata equality filters (:filters, a JSON object)
WITH knn AS (
    SELECT rowid, distance FROM {vec} WHERE embedding MATCH :vector AND k = :fetch
)
SELECT c.id, d.id, d.title, d.source, c.body, c.page, c.heading_path, 1.0 - knn.distance, d.metadata
FROM knn
JOIN ingestq_chunks c ON c.rowid = knn.rowid
JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE d.collection = :collection
  AND NOT EXISTS (
      SELECT 1 FROM json_each(:filters) f
      WHERE json_extract(d.metadata, '$."' || f.key || '"') IS NOT f.value
  )
ORDER BY knn.distance, c.id
LIMIT :k

-- name: search_text
-- bm25() is lower-is-better: the score is its negation, so higher is better as for vectors
SELECT c.id, d.id, d.title, d.source, c.body, c.page, c.heading_path, -bm25(ingestq_chunks_fts),
       d.metadata
FROM ingestq_chunks_fts
JOIN ingestq_chunks c ON c.rowid = ingestq_chunks_fts.rowid
JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE ingestq_chunks_fts MATCH :match
  AND d.collection = :collection
  AND NOT EXISTS (
      SELECT 1 FROM json_each(:filters) f
      WHERE json_extract(d.metadata, '$."' || f.key || '"') IS NOT f.value
  )
ORDER BY bm25(ingestq_chunks_fts), c.id
LIMIT :k

-- name: idempotency_get
-- an unexpired answer kept for this key
SELECT key, fingerprint, status, body, location, created_at, expires_at
FROM ingestq_idempotency WHERE key = :key AND expires_at > :now

-- name: idempotency_put
-- keep the answer unless an unexpired one is already kept for the key (the caller reads back the winner)
INSERT INTO ingestq_idempotency (key, fingerprint, status, body, location, created_at, expires_at)
VALUES (:key, :fingerprint, :status, :body, :location, :now, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    fingerprint = excluded.fingerprint,
    status = excluded.status,
    body = excluded.body,
    location = excluded.location,
    created_at = excluded.created_at,
    expires_at = excluded.expires_at
WHERE ingestq_idempotency.expires_at <= excluded.created_at

-- name: idempotency_prune
-- expired answers, a bounded batch at a time (each put clears some)
DELETE FROM ingestq_idempotency WHERE key IN (
    SELECT key FROM ingestq_idempotency WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit
)
