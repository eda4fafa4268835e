-- Uploads are streamed into their blob row (blob_put_file: a zeroblob, then incremental blob I/O), which
-- SQLite offers on rowid tables only: the table is rebuilt WITH rowid, same columns and primary key, `data`
-- last (a zeroblob stays a few bytes in memory only when it ends the record; elsewhere SQLite expands
-- it: the whole upload's size in zeros). PostgreSQL's 0006 changes nothing (COPY streams there).

CREATE TABLE ingestq_blobs_rowid (
    id         TEXT PRIMARY KEY,  -- sha256 hex of data: content-addressed, stored once
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL,
    data       BLOB NOT NULL
) STRICT;

INSERT INTO ingestq_blobs_rowid (id, size, created_at, data)
SELECT id, size, created_at, data FROM ingestq_blobs;
DROP TABLE ingestq_blobs;
ALTER TABLE ingestq_blobs_rowid RENAME TO ingestq_blobs;
