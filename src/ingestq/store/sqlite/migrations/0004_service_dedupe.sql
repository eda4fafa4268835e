-- What the HTTP service needs of the documents schema:
-- * finding a collection's document by the sha256 of its content (an upload's blob id, or the served
--   version's content_hash), so that the same bytes uploaded twice land on one document;
-- * the answers kept for an `Idempotency-Key`, per key (scoped by route), until they expire.

CREATE INDEX ingestq_documents_blob ON ingestq_documents (collection, blob_id);
CREATE INDEX ingestq_documents_content ON ingestq_documents (collection, content_hash);

CREATE TABLE ingestq_idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,  -- sha256 of what the request asked for
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,  -- the JSON answer as first sent
    location    TEXT,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX ingestq_idempotency_expires ON ingestq_idempotency (expires_at);
