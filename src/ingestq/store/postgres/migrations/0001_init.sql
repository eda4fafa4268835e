-- ingestq schema for PostgreSQL, version 1.
-- Every object carries the ingestq_ prefix: in PostgreSQL the queue usually shares a database (and the
-- public schema) with the application that enqueues, so unprefixed names like "jobs" would collide.

-- The labels equal core.job.JobState (tests/migration compares them). An enum keeps each row small and
-- rejects a typo in a hand-written UPDATE.
CREATE TYPE ingestq_job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

CREATE TABLE ingestq_jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue            text NOT NULL,
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    priority         integer NOT NULL DEFAULT 0,
    state            ingestq_job_state NOT NULL DEFAULT 'queued',
    run_at           timestamptz NOT NULL,
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    dedupe_key       text,
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress         jsonb,
    result           jsonb,
    last_error       text,
    -- bounded history (core.job.ERROR_HISTORY_LIMIT entries), oldest first: [{attempt, at, message}]
    errors           jsonb NOT NULL DEFAULT '[]',
    document_id      text,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    -- a running row always has an owner and a lease, so fencing and rescue never meet a NULL
    CONSTRAINT ingestq_jobs_running_has_lease
        CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
)
-- A queue table churns: every job is inserted, updated twice and later deleted. Vacuum it long before
-- the default 20% of dead rows so that the partial indexes below stay small.
WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- Every hot path reads only unfinished rows, so its index covers only those rows: the cost of claim,
-- position, rescue and depth checks does not grow with the finished history (guarantee 10).

-- claim across every queue, in claim order, so LIMIT stops after `limit` index entries
CREATE INDEX ingestq_jobs_claim ON ingestq_jobs (priority DESC, run_at, id) WHERE state = 'queued';
-- claim restricted to queues, position in a queue, queued counts and queue depth
CREATE INDEX ingestq_jobs_queue_claim ON ingestq_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
-- rescue of expired leases, running counts per queue and per worker
CREATE INDEX ingestq_jobs_running ON ingestq_jobs (lease_expires_at) INCLUDE (queue, lease_owner)
    WHERE state = 'running';
-- dedupe: at most one unfinished job per key; a finished job frees its key
CREATE UNIQUE INDEX ingestq_jobs_dedupe ON ingestq_jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
-- retention pruning and purge walk finished rows by age
CREATE INDEX ingestq_jobs_finished ON ingestq_jobs (state, finished_at) INCLUDE (queue)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX ingestq_jobs_document ON ingestq_jobs (document_id) WHERE document_id IS NOT NULL;

-- Per-queue settings. A queue needs no row to be used; a row with max_depth turns on backpressure, and
-- enqueuers lock it (SELECT ... FOR UPDATE) so that concurrent enqueues cannot overshoot the depth.
CREATE TABLE ingestq_queues (
    name      text PRIMARY KEY,
    max_depth integer CHECK (max_depth IS NULL OR max_depth >= 0)
);

CREATE TABLE ingestq_workers (
    worker_id     text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    queues        text[],
    concurrency   integer NOT NULL,
    lease_seconds double precision NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL
);

-- The last slot enqueued for each periodic schedule: the conditional upsert on this row is what makes
-- a slot produce one job however many workers race for it.
CREATE TABLE ingestq_periodic (
    name      text PRIMARY KEY,
    last_slot timestamptz NOT NULL,
    job_id    bigint
);

-- Finished jobs per queue and state, so that stats never counts the finished history (guarantee 10).
-- An append-only log of deltas rather than one counter row per (queue, state): concurrent completions
-- would otherwise queue up on that row's lock until each commits. job_prune folds the log back into one
-- row per (queue, state), so stats sums a few rows per finishing statement since the last prune.
CREATE TABLE ingestq_finished_counts (
    queue text NOT NULL,
    state ingestq_job_state NOT NULL,
    n     bigint NOT NULL
);

-- Statement-level triggers with transition tables: one insert per statement (a batch of 500 outcomes
-- writes at most one row per queue and state), and any write path is counted, raw SQL included.
CREATE FUNCTION ingestq_count_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO ingestq_finished_counts (queue, state, n)
        SELECT queue, state, sum(d) FROM (
            SELECT queue, state, 1 AS d FROM new_rows WHERE state IN ('succeeded', 'failed', 'cancelled')
            UNION ALL
            SELECT queue, state, -1 AS d FROM old_rows WHERE state IN ('succeeded', 'failed', 'cancelled')
        ) delta
        GROUP BY queue, state
        HAVING sum(d) <> 0;
    ELSE
        INSERT INTO ingestq_finished_counts (queue, state, n)
        SELECT queue, state, -count(*) FROM old_rows
        WHERE state IN ('succeeded', 'failed', 'cancelled')
        GROUP BY queue, state;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ingestq_jobs_count_update AFTER UPDATE ON ingestq_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestq_count_finished();
CREATE TRIGGER ingestq_jobs_count_delete AFTER DELETE ON ingestq_jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestq_count_finished();
