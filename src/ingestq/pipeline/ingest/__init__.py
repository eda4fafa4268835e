"""The one bridge between the queue and the pipeline: ingestion as job kinds.

- `kinds`: the kinds' names and options, declared once (cheap to import: a worker registers them at
  start-up without loading the pipeline);
- `runtime`: the handlers and the lazily built resources they share (embedder, chunker, parser pool).

Nothing is imported here, so `ingestq.pipeline.ingest.kinds` stays cheap.
"""
