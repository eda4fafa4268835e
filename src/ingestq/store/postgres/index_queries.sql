-- Named queries of the PostgreSQL index store (documents, chunks, vectors, full text, cache, buckets); the
-- same operation has the same name as in store/sqlite/index_queries.sql (see tests/unit/test_queries.py).
-- Vector statements are templates: {coll_id} and {dim} are replaced by integers read from
-- ingestq_collections (never caller text), so the planner sees the partial HNSW index's own predicate
-- and cast and can use it.

-- name: collection_get
SELECT name, model_id, dimension, created_at, coll_id FROM ingestq_collections WHERE name = %(name)s

-- name: collection_list
SELECT name, model_id, dimension, created_at, coll_id FROM ingestq_collections ORDER BY name

-- name: collection_insert
INSERT INTO ingestq_collections (name, model_id, dimension, created_at)
VALUES (%(name)s, %(model_id)s, %(dimension)s, %(now)s)
ON CONFLICT (name) DO NOTHING
RETURNING name, model_id, dimension, created_at, coll_id

-- name: hnsw_create
-- cosine: scores are 1 - cosine distance, the same on both backends. CONCURRENTLY: building it scans
-- the whole chunks table, and a plain CREATE INDEX would block every collection's commits meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ingestq_chunks_hnsw_{coll_id} ON ingestq_chunks
USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE coll_id = {coll_id}

-- name: blob_put
-- The same bytes again: created_at is refreshed (at most every 5 minutes), so the orphan sweep
-- (blob_prune, grace BLOB_GRACE) cannot take a blob between this put and the registration of the
-- document that names it.
INSERT INTO ingestq_blobs (id, data, size, created_at) VALUES (%(id)s, %(data)s, %(size)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at
WHERE ingestq_blobs.created_at < excluded.created_at - interval '5 minutes'

-- name: blob_prune
-- Uploaded bytes no document names any more (deleted, or replaced by a new upload)
DELETE FROM ingestq_blobs WHERE id IN (
    SELECT b.id FROM ingestq_blobs b
    WHERE b.created_at < %(before)s
      AND NOT EXISTS (SELECT 1 FROM ingestq_documents d WHERE d.blob_id = b.id)
    LIMIT %(limit)s
)

-- name: blob_exists
SELECT 1 FROM ingestq_blobs WHERE id = %(id)s

-- name: blob_copy
-- blob_put_file: the row streamed in COPY's text format (the bytea as \\x and hex, written a chunk at a
-- time), so that neither side of the connection needs the whole upload in one message.
COPY ingestq_blobs (id, data, size, created_at) FROM STDIN

-- name: blob_touch
-- blob_put_file of bytes stored already: blob_put's refresh of created_at (same throttle, same reason).
UPDATE ingestq_blobs SET created_at = %(now)s WHERE id = %(id)s AND created_at < %(now)s - interval '5 minutes'

-- name: blob_get
SELECT data FROM ingestq_blobs WHERE id = %(id)s

-- name: document_register
INSERT INTO ingestq_documents (collection, id, source, status, metadata, blob_id, created_at, updated_at)
VALUES (%(collection)s, %(id)s, %(source)s, 'pending', %(metadata)s::jsonb, %(blob_id)s, %(now)s, %(now)s)
ON CONFLICT (collection, id) DO UPDATE SET
    source = excluded.source,
    status = 'pending',
    metadata = ingestq_documents.metadata || excluded.metadata,
    blob_id = excluded.blob_id,
    error = NULL,
    updated_at = excluded.updated_at
RETURNING collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
          model_id, settings_hash, error, blob_id, created_at, updated_at

-- name: document_get
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents WHERE collection = %(collection)s AND id = %(id)s

-- name: document_by_content
-- the collection's document holding these bytes: an upload whose latest bytes they are (blob ids are the
-- sha256), or a document read from a path or URL whose served version was built from them
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE collection = %(collection)s AND blob_id = %(hash)s
UNION ALL
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE collection = %(collection)s AND content_hash = %(hash)s AND blob_id IS NULL
ORDER BY id
LIMIT 1

-- name: document_list
-- keyset pagination by (id, collection): within a collection, the (collection, id) unique index
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE (%(collection)s::text IS NULL OR collection = %(collection)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(after_id)s::text IS NULL OR id > %(after_id)s
       OR (id = %(after_id)s AND %(after_collection)s::text IS NOT NULL AND collection > %(after_collection)s))
ORDER BY id, collection
LIMIT %(limit)s

-- name: document_counts
SELECT status, count(*) FROM ingestq_documents
WHERE (%(collection)s::text IS NULL OR collection = %(collection)s)
GROUP BY status

-- name: document_delete
-- chunks (with their vectors and tsvectors) go by ON DELETE CASCADE
DELETE FROM ingestq_documents WHERE collection = %(collection)s AND id = %(id)s

-- name: document_lock_for_commit
-- a commit for a document nobody registered still leaves one row (source = its id); the row lock
-- orders two commits of one document
INSERT INTO ingestq_documents (collection, id, source, status, created_at, updated_at)
VALUES (%(collection)s, %(id)s, %(id)s, 'pending', %(now)s, %(now)s)
ON CONFLICT (collection, id) DO UPDATE SET updated_at = excluded.updated_at
RETURNING doc_key

-- name: chunks_delete_document
DELETE FROM ingestq_chunks WHERE doc_key = %(doc_key)s

-- name: chunks_insert
-- the whole version as arrays: one statement whatever the chunk count
INSERT INTO ingestq_chunks
    (doc_key, coll_id, id, ordinal, text, body, heading_path, page, page_end, token_count, text_hash, embedding)
SELECT %(doc_key)s, %(coll_id)s, c.id, c.ordinal, c.text, c.body, c.heading_path::jsonb, c.page, c.page_end,
       c.token_count, c.text_hash, c.embedding::vector
FROM unnest(%(ids)s::text[], %(ordinals)s::integer[], %(texts)s::text[], %(bodies)s::text[],
            %(heading_paths)s::text[], %(pages)s::integer[], %(page_ends)s::integer[],
            %(token_counts)s::integer[], %(text_hashes)s::text[], %(embeddings)s::text[])
     AS c(id, ordinal, text, body, heading_path, page, page_end, token_count, text_hash, embedding)

-- name: document_indexed
UPDATE ingestq_documents SET
    status = 'indexed',
    version = version + 1,
    chunk_count = %(chunk_count)s,
    title = %(title)s,
    media_type = %(media_type)s,
    content_hash = %(content_hash)s,
    model_id = %(model_id)s,
    settings_hash = %(settings_hash)s,
    metadata = metadata || %(metadata)s::jsonb,
    error = NULL,
    updated_at = %(now)s
WHERE doc_key = %(doc_key)s

-- name: document_mark
UPDATE ingestq_documents SET status = %(status)s, error = %(error)s, updated_at = %(now)s
WHERE collection = %(collection)s AND id = %(id)s

-- name: documents_stale
SELECT collection, id, source, status, version, media_type, content_hash, title, metadata, chunk_count,
       model_id, settings_hash, error, blob_id, created_at, updated_at
FROM ingestq_documents
WHERE collection = %(collection)s AND status = 'indexed'
  AND (model_id IS DISTINCT FROM %(model_id)s OR settings_hash IS DISTINCT FROM %(settings_hash)s)
ORDER BY id
LIMIT %(limit)s

-- name: document_chunks
SELECT c.id, c.ordinal, c.text, c.body, c.heading_path, c.page, c.page_end, c.token_count, c.text_hash,
       CASE WHEN %(with_vectors)s THEN c.embedding::text END
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE d.collection = %(collection)s AND d.id = %(id)s
ORDER BY c.ordinal

-- name: document_token_count
SELECT coalesce(sum(c.token_count), 0)
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE d.collection = %(collection)s AND d.id = %(id)s

-- name: embed_cache_get
SELECT key, vector FROM ingestq_embed_cache WHERE model_id = %(model_id)s AND key = ANY(%(keys)s::text[])

-- name: embed_cache_put
INSERT INTO ingestq_embed_cache (model_id, key, vector, created_at)
SELECT %(model_id)s, k, v, %(now)s FROM unnest(%(keys)s::text[], %(vectors)s::bytea[]) AS u(k, v)
ON CONFLICT (model_id, key) DO UPDATE SET vector = excluded.vector, created_at = excluded.created_at

-- name: embed_cache_prune
DELETE FROM ingestq_embed_cache WHERE (model_id, key) IN (
    SELECT model_id, key FROM ingestq_embed_cache WHERE created_at < %(before)s LIMIT %(limit)s
)

-- name: rate_bucket_lock
SELECT requests, tokens, updated_at FROM ingestq_rate_buckets WHERE key = %(key)s FOR UPDATE

-- name: rate_bucket_insert
-- the first writer of a new bucket wins; a loser (no row back) retries and then finds the row to lock
INSERT INTO ingestq_rate_buckets (key, requests, tokens, updated_at)
VALUES (%(key)s, %(requests)s, %(tokens)s, %(updated_at)s)
ON CONFLICT (key) DO NOTHING
RETURNING key

-- name: rate_bucket_update
UPDATE ingestq_rate_buckets SET requests = %(requests)s, tokens = %(tokens)s, updated_at = %(updated_at)s
WHERE key = %(key)s

-- name: search_settings
-- let the HNSW scan continue past ef_search candidates when filters drop rows (pgvector >= 0.8), in
-- exact distance order
SELECT set_config('hnsw.iterative_scan', 'strict_order', true), set_config('hnsw.ef_search', %(ef)s, true)

-- name: search_vector
SELECT c.id, d.id, d.title, d.source, c.body, c.page, c.heading_path,
       1 - (c.embedding::vector({dim}) <=> %(vector)s::vector({dim})), d.metadata
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE c.coll_id = {coll_id} AND d.metadata @> %(filters)s::jsonb
-- distance alone: a second sort key would keep the planner off the HNSW index
ORDER BY c.embedding::vector({dim}) <=> %(vector)s::vector({dim})
LIMIT %(k)s

-- name: search_text
SELECT c.id, d.id, d.title, d.source, c.body, c.page, c.heading_path, ts_rank(c.body_tsv, q.q), d.metadata
FROM ingestq_chunks c
JOIN ingestq_documents d ON d.doc_key = c.doc_key,
     to_tsquery('simple', %(tsquery)s) AS q(q)
WHERE c.coll_id = %(coll_id)s AND c.body_tsv @@ q.q AND d.metadata @> %(filters)s::jsonb
ORDER BY ts_rank(c.body_tsv, q.q) DESC, c.id
LIMIT %(k)s

-- name: search_vector_exact
-- An HNSW graph can leave a few rows unreachable (pathological on small or skewed collections), and a
-- filtered scan can run out of candidates: when the index gave fewer than k rows, this exact scan runs.
-- ("+ 0" keeps the planner off the HNSW index: it only serves ORDER BY on the bare distance; a GUC
-- would not do, since psycopg's prepared statements keep their plan.)
SELECT c.id, d.id, d.title, d.source, c.body, c.page, c.heading_path,
       1 - (c.embedding::vector({dim}) <=> %(vector)s::vector({dim})), d.metadata
FROM ingestq_chunks c JOIN ingestq_documents d ON d.doc_key = c.doc_key
WHERE c.coll_id = {coll_id} AND d.metadata @> %(filters)s::jsonb
ORDER BY (c.embedding::vector({dim}) <=> %(vector)s::vector({dim})) + 0, c.id
LIMIT %(k)s

-- name: idempotency_get
-- an unexpired answer kept for this key
SELECT key, fingerprint, status, body, location, created_at, expires_at
FROM ingestq_idempotency WHERE key = %(key)s AND expires_at > %(now)s

-- name: idempotency_put
-- keep the answer unless an unexpired one is already kept for the key (the caller reads back the winner)
INSERT INTO ingestq_idempotency (key, fingerprint, status, body, location, created_at, expires_at)
VALUES (%(key)s, %(fingerprint)s, %(status)s, %(body)s, %(location)s, %(now)s, %(expires_at)s)
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
    SELECT key FROM ingestq_idempotency WHERE expires_at <= %(now)s ORDER BY expires_at LIMIT %(limit)s
)
