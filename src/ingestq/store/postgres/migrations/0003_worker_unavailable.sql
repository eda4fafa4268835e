-- Why a worker stopped claiming some job kinds (a parser process that cannot start, a model that does
-- not load): one line, `<cause>; <fix>`, set by its heartbeat and shown by `ingestq stats`. NULL: none.
-- Queue schema only: applied even where the index migration (2) is refused for want of pgvector.

ALTER TABLE ingestq_workers ADD COLUMN unavailable text;
