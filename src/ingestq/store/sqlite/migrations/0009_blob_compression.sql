-- PostgreSQL's 0009 stores blobs with lz4 rather than pglz; SQLite does not compress, so nothing changes
-- here (the number keeps both schemas' versions equal).

SELECT 1;
