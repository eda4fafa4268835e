-- SQLite's 0006 rebuilds ingestq_blobs with rowids for streamed writes; PostgreSQL streams uploads with
-- COPY into the table as it is, so nothing changes here (the number keeps both schemas' versions equal).
-- Queue schema only: applied even where the index migration (2) is refused for want of pgvector.

SELECT 1;
