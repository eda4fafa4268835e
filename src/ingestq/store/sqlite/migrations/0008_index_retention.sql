-- The embedding cache is pruned by age (Settings.embed_cache_retention, the worker's cleaner): without
-- this index each pass would scan the whole cache.

CREATE INDEX ingestq_embed_cache_created ON ingestq_embed_cache (created_at);

-- Uploaded bytes no document names any more are swept by the cleaner (blob_prune): it looks blobs up by
-- id among the documents, and by age among the blobs.
CREATE INDEX ingestq_documents_blob_id ON ingestq_documents (blob_id);
CREATE INDEX ingestq_blobs_created ON ingestq_blobs (created_at);
