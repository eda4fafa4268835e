-- What the HTTP service needs of the documents schema:
-- * finding a collection's document by the sha256 of its content (an upload's blob id, or the served
--   version's content_hash), so that the same bytes uploaded twice land on one document;
-- * the answers kept for an `Idempotency-Key`, per key (scoped by route), until they expire.
-- Builds on the documents migration (2): not applied where that one is refused (no pgvector).

CREATE INDEX ingestq_documents_blob ON ingestq_documents (collection, blob_id);
CREATE INDEX ingestq_documents_content ON ingestq_documents (collection, content_hash);

CREATE TABLE ingestq_idempotency (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,  -- sha256 of what the request asked for
    status      integer NOT NULL,
    body        text NOT NULL,  -- the JSON answer as first sent
    location    text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX ingestq_idempotency_expires ON ingestq_idempotency (expires_at);
