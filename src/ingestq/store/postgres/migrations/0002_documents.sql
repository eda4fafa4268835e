-- Documents, chunks with their vectors and full text, blobs, the embedding cache, shared rate buckets.

-- pgvector ships with most PostgreSQL packages but not all: say so in one line instead of failing on
-- CREATE EXTENSION's "could not open extension control file".
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        RAISE EXCEPTION 'pgvector is not installed on this server' USING ERRCODE = 'feature_not_supported';
    END IF;
END
$$;
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE ingestq_collections (
    coll_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- names the collection's HNSW index
    name       text NOT NULL UNIQUE,
    model_id   text NOT NULL,
    -- HNSW indexes vectors of up to 2000 dimensions
    dimension  integer NOT NULL CHECK (dimension > 0 AND dimension <= 2000),
    created_at timestamptz NOT NULL
);

CREATE TABLE ingestq_blobs (
    id         text PRIMARY KEY,  -- sha256 hex of data: content-addressed, stored once
    data       bytea NOT NULL,
    size       bigint NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE ingestq_documents (
    doc_key       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection    text NOT NULL,
    id            text NOT NULL,
    source        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'indexed', 'failed', 'quarantined')),
    version       integer NOT NULL DEFAULT 0,
    media_type    text,
    content_hash  text,
    title         text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    chunk_count   integer NOT NULL DEFAULT 0,
    model_id      text,
    settings_hash text,
    error         text,
    blob_id       text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (collection, id)
);
CREATE INDEX ingestq_documents_status ON ingestq_documents (status, collection);
CREATE INDEX ingestq_documents_metadata ON ingestq_documents USING gin (metadata jsonb_path_ops);

-- Only the current version's chunks exist: a commit deletes the previous ones in its transaction.
-- `embedding` has no declared dimension (collections differ); each collection gets a partial HNSW
-- index on embedding::vector(<its dimension>) at collection_ensure.
CREATE TABLE ingestq_chunks (
    chunk_key    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_key      bigint NOT NULL REFERENCES ingestq_documents (doc_key) ON DELETE CASCADE,
    coll_id      integer NOT NULL REFERENCES ingestq_collections (coll_id),
    id           text NOT NULL,
    ordinal      integer NOT NULL,
    text         text NOT NULL,
    body         text NOT NULL,
    heading_path jsonb NOT NULL,  -- array of strings
    page         integer,
    page_end     integer,
    token_count  integer NOT NULL,
    text_hash    text NOT NULL,
    embedding    vector NOT NULL,
    -- 'simple' (lower-cased words, no stemming, no stop words): the corpora are multilingual and a
    -- per-language stemmer would mangle the others; it also matches what SQLite's FTS5 unicode61 does,
    -- so both backends find the same words.
    body_tsv     tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
    UNIQUE (doc_key, id)
);
CREATE INDEX ingestq_chunks_tsv ON ingestq_chunks USING gin (body_tsv);
CREATE INDEX ingestq_chunks_collection ON ingestq_chunks (coll_id);

CREATE TABLE ingestq_embed_cache (
    model_id   text NOT NULL,
    key        text NOT NULL,
    vector     bytea NOT NULL,  -- float32 little-endian
    created_at timestamptz NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE ingestq_rate_buckets (
    key        text PRIMARY KEY,
    requests   double precision NOT NULL,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL
);
