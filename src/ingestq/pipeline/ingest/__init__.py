"""The one bridge between the queue and the pipeline: ingestion as job kinds.

- `kinds`: the kinds' names and options, declared once (cheap to import: a worker registers them at
  start-up without loading the pipeline);
- `enqueue`: queue documents (pending + one deduplicated job each) and backfill a collection;
- `attempt`: one attempt at one document, as named steps, and its finalizer;
- `runtime`: the handlers and the lazily built resources they share (embedder, chunker, parser pool);
- `adapters`: the database-backed rate-limit buckets and embedding cache.

Nothing is imported here, so `ingestq.pipeline.ingest.kinds` stays cheap.
"""
