-- The embedding cache is pruned by age (Settings.embed_cache_retention, the worker's cleaner): without
-- this index each pass would scan the whole cache.

CREATE INDEX ingestq_embed_cache_created ON ingestq_embed_cache (created_at);
