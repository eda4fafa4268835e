-- ingestq schema 1: jobs, queues, workers, periodic schedules.
-- Times are REAL unix seconds (UTC); JSON is TEXT. The migration runner records this file in
-- ingestq_migrations inside the same transaction.

CREATE TABLE ingestq_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused after purges
    queue            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL DEFAULT '{}',
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    run_at           REAL    NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    dedupe_key       TEXT,
    lease_owner      TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress         TEXT,
    result           TEXT,
    last_error       TEXT,
    errors           TEXT    NOT NULL DEFAULT '[]',
    document_id      TEXT,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL
);

-- Every hot index is partial over unfinished rows, so claim, position, depth checks and the
-- rescuer cost the same whether 0 or 1,000,000 finished jobs are kept. Each index costs writes on
-- every state change, so there are no more than the hot paths need: queued counts come from the
-- claim indexes, running counts from the lease index (running rows are few: bounded by workers).
CREATE INDEX ingestq_jobs_claim ON ingestq_jobs (priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX ingestq_jobs_claim_queue ON ingestq_jobs (priority DESC, queue, run_at, id)
    WHERE state = 'queued';
CREATE INDEX ingestq_jobs_lease ON ingestq_jobs (lease_expires_at) WHERE state = 'running';
CREATE UNIQUE INDEX ingestq_jobs_dedupe ON ingestq_jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
CREATE INDEX ingestq_jobs_finished ON ingestq_jobs (state, finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX ingestq_jobs_document ON ingestq_jobs (document_id) WHERE document_id IS NOT NULL;

-- Finished jobs per queue and state, so that stats never counts history. The store adds and
-- subtracts per batch in the transaction that moves jobs into or out of a finished state (triggers
-- would do it per row and cost a quarter of the claim+finish throughput).
CREATE TABLE ingestq_finished_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

CREATE TABLE ingestq_queues (
    name      TEXT PRIMARY KEY,
    max_depth INTEGER CHECK (max_depth IS NULL OR max_depth >= 0)
);

CREATE TABLE ingestq_workers (
    worker_id     TEXT    PRIMARY KEY,
    hostname      TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT,  -- JSON array, NULL: every queue
    concurrency   INTEGER NOT NULL,
    lease_seconds REAL    NOT NULL,
    started_at    REAL    NOT NULL,
    heartbeat_at  REAL    NOT NULL
);

CREATE TABLE ingestq_periodic (
    name      TEXT PRIMARY KEY,
    last_slot REAL NOT NULL
);

-- Planner statistics for the claim indexes, fixed here rather than left to ANALYZE: they say that
-- priority has few distinct values, so the claim is planned as a skip-scan, one index range per
-- priority (`ANY(priority) AND run_at <= now`), still in claim order. Without it, a claim that finds
-- fewer due jobs than its limit walks every job scheduled for later: 100,000 retries or scheduled
-- jobs would cost milliseconds per claim, under the write lock. A later ANALYZE that finds the same
-- shape keeps the plan.
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl = 'ingestq_jobs' AND idx IN ('ingestq_jobs_claim', 'ingestq_jobs_claim_queue');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('ingestq_jobs', 'ingestq_jobs_claim', '1000000 100000 2 1'),
    ('ingestq_jobs', 'ingestq_jobs_claim_queue', '1000000 100000 10000 2 1');
