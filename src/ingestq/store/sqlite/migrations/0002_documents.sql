-- Documents, chunks, full text, blobs, the embedding cache and shared rate buckets.
-- Vectors live in one sqlite-vec vec0 table per collection (ingestq_vec_<collection rowid>), created by
-- collection_ensure, because a vec0 column has one fixed dimension and each collection has its own.

CREATE TABLE ingestq_collections (
    vec_table_id INTEGER PRIMARY KEY,  -- names the collection's vec0 table (collection names are free text)
    name         TEXT NOT NULL UNIQUE,
    model_id     TEXT NOT NULL,
    dimension    INTEGER NOT NULL CHECK (dimension > 0),
    created_at   REAL NOT NULL
) STRICT;

CREATE TABLE ingestq_blobs (
    id         TEXT PRIMARY KEY,  -- sha256 hex of data: content-addressed, stored once
    data       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE ingestq_documents (
    doc_key       INTEGER PRIMARY KEY,  -- compact join key for chunks
    collection    TEXT NOT NULL,
    id            TEXT NOT NULL,
    source        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'indexed', 'failed', 'quarantined')),
    version       INTEGER NOT NULL DEFAULT 0,
    media_type    TEXT,
    content_hash  TEXT,
    title         TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    model_id      TEXT,
    settings_hash TEXT,
    error         TEXT,
    blob_id       TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (collection, id)
) STRICT;
CREATE INDEX ingestq_documents_status ON ingestq_documents (status, collection);

-- Only the current version's chunks exist: a commit deletes the previous ones in its transaction.
-- The chunk rowid is also its rowid in the FTS table and in the collection's vec0 table.
CREATE TABLE ingestq_chunks (
    rowid        INTEGER PRIMARY KEY,
    doc_key      INTEGER NOT NULL REFERENCES ingestq_documents (doc_key) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    body         TEXT NOT NULL,
    heading_path TEXT NOT NULL,  -- JSON array of strings
    page         INTEGER,
    page_end     INTEGER,
    token_count  INTEGER NOT NULL,
    text_hash    TEXT NOT NULL,
    UNIQUE (doc_key, id)
) STRICT;

-- External-content FTS5 over chunk bodies: the text is stored once (in ingestq_chunks); the triggers
-- keep the index in step in the same transaction, including deletes cascaded from a document.
CREATE VIRTUAL TABLE ingestq_chunks_fts USING fts5(
    body, content = 'ingestq_chunks', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER ingestq_chunks_fts_insert AFTER INSERT ON ingestq_chunks BEGIN
    INSERT INTO ingestq_chunks_fts (rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER ingestq_chunks_fts_delete AFTER DELETE ON ingestq_chunks BEGIN
    INSERT INTO ingestq_chunks_fts (ingestq_chunks_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;

CREATE TABLE ingestq_embed_cache (
    model_id   TEXT NOT NULL,
    key        TEXT NOT NULL,
    vector     BLOB NOT NULL,  -- float32 little-endian
    created_at REAL NOT NULL,
    PRIMARY KEY (model_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE ingestq_rate_buckets (
    key        TEXT PRIMARY KEY,
    requests   REAL NOT NULL,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL
) STRICT, WITHOUT ROWID;
