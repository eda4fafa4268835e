-- Named queries of the PostgreSQL backend: the same operation has the same name as in
-- store/sqlite/queries.sql (tests/unit/test_queries.py lists the dialect-only names and why).
-- Parameters are psycopg placeholders, %(name)s; every "now" comes from the caller, never from now(),
-- so that tests and the worker own the clock. Job-returning queries list the columns in the order of
-- model.job.Job's fields (store/postgres/rows.py relies on it).

-- name: job_insert_many
-- One statement for the whole batch: the batch travels as one JSON array of objects and
-- json_to_recordset turns it back into rows, so 10,000 jobs cost one parameter, one round trip and one
-- plan, and payloads arrive as JSON without being encoded twice. ORDER BY ord keeps identity ids in input
-- order. A dedupe_key that matches an unfinished job (the partial unique index) is skipped here; the
-- caller then reads the existing job with job_get_unfinished_by_dedupe_key. Absent keys are NULL: run_at
-- defaults to now, the others to the schema's defaults.
INSERT INTO ingestq_jobs
    (queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id, created_at)
SELECT t.queue, t.kind, coalesce(t.payload, '{}'), coalesce(t.priority, 0), coalesce(t.run_at, %(now)s),
       t.max_attempts, t.dedupe_key, t.document_id, %(now)s
FROM ROWS FROM (
         json_to_recordset(%(jobs)s::json)
         AS (queue text, kind text, payload jsonb, priority integer, run_at timestamptz,
             max_attempts integer, dedupe_key text, document_id text)
     ) WITH ORDINALITY AS t(queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id, ord)
ORDER BY t.ord
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running') DO NOTHING
RETURNING id, dedupe_key

-- name: job_insert_many_now
-- job_insert_many as one autocommitted statement, the usual enqueue: one round trip, no BEGIN/COMMIT.
-- It inserts only if none of the batch's queues has a max_depth (the caller then takes the locked
-- path), and notifies in the same statement when it inserted (delivered at its commit). Returns one
-- row: the ids inserted (the caller sorts them: id order is input order; a job whose dedupe key is
-- taken has none), and whether a limited queue stopped the insert. No ORDER BY here: with the session's
-- enable_sort=off a sort costs 1e10 and the planner would JIT-compile the statement (~0.3 s).
WITH limited AS (
    SELECT FROM ingestq_queues WHERE name = ANY(%(queues)s::text[]) AND max_depth IS NOT NULL
), inserted AS (
    INSERT INTO ingestq_jobs
        (queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id, created_at)
    SELECT t.queue, t.kind, coalesce(t.payload, '{}'), coalesce(t.priority, 0), coalesce(t.run_at, %(now)s),
           t.max_attempts, t.dedupe_key, t.document_id, %(now)s
    FROM ROWS FROM (
             json_to_recordset(%(jobs)s::json)
             AS (queue text, kind text, payload jsonb, priority integer, run_at timestamptz,
                 max_attempts integer, dedupe_key text, document_id text)
         ) WITH ORDINALITY AS t(queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id, ord)
    WHERE NOT EXISTS (SELECT FROM limited)
    ORDER BY t.ord
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running') DO NOTHING
    RETURNING id, dedupe_key
)
SELECT array(SELECT id FROM inserted),
       EXISTS (SELECT FROM limited),
       (SELECT pg_notify('ingestq_jobs', '') WHERE EXISTS (SELECT FROM inserted))

-- name: job_insert_bulk
-- Store.job_insert_bulk: jobs that differ only by payload. The payloads (JSON objects, validated by the
-- client) travel as one JSON array made by joining their texts (no escaping, unlike a text[] literal)
-- and are parsed once, straight to jsonb; one round trip. Unless `locked`
-- (the caller holds the queue's row lock and checks the depth itself), a queue with a max_depth stops
-- the insert and the caller takes the locked path. Notifies when it inserted. Returns the ids (unsorted,
-- see job_insert_many_now) and whether a limit stopped the insert.
WITH limited AS (
    SELECT FROM ingestq_queues WHERE name = %(queue)s AND max_depth IS NOT NULL AND NOT %(locked)s
), inserted AS (
    INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, document_id, created_at)
    SELECT %(queue)s, %(kind)s, p.payload, %(priority)s, %(run_at)s, %(max_attempts)s,
           %(document_id)s::text, %(now)s
    FROM jsonb_array_elements(%(payloads)s::jsonb) WITH ORDINALITY AS p(payload, ord)
    WHERE NOT EXISTS (SELECT FROM limited)
    ORDER BY p.ord
    RETURNING id
)
SELECT array(SELECT id FROM inserted),
       EXISTS (SELECT FROM limited),
       (SELECT pg_notify('ingestq_jobs', '') WHERE EXISTS (SELECT FROM inserted))

-- name: job_get_unfinished_by_dedupe_key
-- The unfinished jobs holding these keys (served by the partial unique index).
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs
WHERE dedupe_key = ANY(%(keys)s::text[]) AND state IN ('queued', 'running')

-- name: queue_lock_limited
-- Backpressure: lock the rows of the batch's queues that have a max_depth, in name order (no deadlock
-- between two batches naming the same queues). Concurrent enqueuers to a limited queue wait here, so
-- the depth each one counts after its insert includes every committed competitor.
SELECT name, max_depth FROM ingestq_queues
WHERE name = ANY(%(queues)s::text[]) AND max_depth IS NOT NULL
ORDER BY name
FOR UPDATE

-- name: queue_depth
-- Unfinished jobs per queue (both counts come from the partial indexes on unfinished rows).
SELECT q.name,
       (SELECT count(*) FROM ingestq_jobs j WHERE j.queue = q.name AND j.state = 'queued')
     + (SELECT count(*) FROM ingestq_jobs j WHERE j.queue = q.name AND j.state = 'running')
FROM unnest(%(queues)s::text[]) AS q(name)

-- name: jobs_notify
-- One notification per enqueue transaction (or per statement that re-queues jobs), whatever the batch
-- size; it is delivered at commit, so a listener never wakes up before the rows are visible.
-- No payload: listeners only need to know that something changed (and a payload naming many queues
-- could exceed NOTIFY's 8,000-byte limit).
SELECT pg_notify('ingestq_jobs', '')

-- name: job_get
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs
WHERE id = %(id)s

-- name: planner_defaults
-- job_list runs with the planner's own judgement (see SESSION_OPTIONS in connect.py): a listing of
-- running or failed jobs is best served by a partial index and a sort, not by walking the whole primary
-- key backwards past a million succeeded rows.
SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true)

-- name: job_list
-- Keyset pagination on the primary key, newest first. A NULL filter means "any".
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs
WHERE (%(states)s::ingestq_job_state[] IS NULL OR state = ANY(%(states)s::ingestq_job_state[]))
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
  AND (%(document_id)s::text IS NULL OR document_id = %(document_id)s::text)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: job_claim
-- Claim in one statement. The CTE walks the ingestq_jobs_claim index in claim order (the connection
-- settings in store/postgres/connect.py keep the planner on it) and locks up to
-- `limit` due rows; SKIP LOCKED passes over rows another claimer has locked instead of waiting for it,
-- so concurrent workers each take different jobs without blocking one another, and a row is locked
-- before it is updated, so no two claimers ever receive the same job. The UPDATE in the same statement
-- moves the locked rows to running, so there is no window where a row is locked but still queued after
-- the statement ends. RETURNING order is unspecified: the caller sorts into claim order. An empty error
-- history comes back as NULL, which spares the client a JSON parse per job.
-- `caps` (NULL, or a JSON object kind -> n) bounds kinds the worker runs only a few of at once
-- (TaskSpec.concurrency): of the candidates, at most n of such a kind are kept, the first in claim
-- order; the others are unlocked at commit, unclaimed. Only the worker's own slots count: the cap is
-- per worker, like the concurrency.
-- `paused` (NULL, or text[]) is ClaimRequest.exclude_queues, the paused queues: a filter on the rows the
-- index walk finds; NULL (nothing paused) short-circuits it, and the plan is the same either way.
WITH candidates AS (
    SELECT id, kind, priority, run_at FROM ingestq_jobs
    WHERE state = 'queued' AND run_at <= %(now)s
      AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
      AND (%(paused)s::text[] IS NULL OR NOT queue = ANY(%(paused)s::text[]))
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT c.id FROM candidates c
    WHERE %(caps)s::jsonb IS NULL OR NOT %(caps)s::jsonb ? c.kind
       OR (SELECT count(*) FROM candidates d
           WHERE d.kind = c.kind
             AND (d.priority > c.priority OR (d.priority = c.priority AND (d.run_at, d.id) < (c.run_at, c.id))))
          < (%(caps)s::jsonb ->> c.kind)::integer
)
UPDATE ingestq_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_owner = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s, started_at = %(now)s, cancel_requested = false
FROM picked
WHERE j.id = picked.id
RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.state, j.run_at, j.attempt, j.max_attempts,
          j.dedupe_key, j.lease_owner, j.lease_expires_at, j.cancel_requested, j.progress, j.result,
          j.last_error, nullif(j.errors, '[]'), j.document_id, j.created_at, j.started_at, j.finished_at

-- name: job_claim_queue
-- job_claim for one queue: walks that queue's slice of ingestq_jobs_queue_claim in claim order.
WITH candidates AS (
    SELECT id, kind, priority, run_at FROM ingestq_jobs
    WHERE state = 'queued' AND queue = %(queue)s AND run_at <= %(now)s
      AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
      AND (%(paused)s::text[] IS NULL OR NOT queue = ANY(%(paused)s::text[]))
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT c.id FROM candidates c
    WHERE %(caps)s::jsonb IS NULL OR NOT %(caps)s::jsonb ? c.kind
       OR (SELECT count(*) FROM candidates d
           WHERE d.kind = c.kind
             AND (d.priority > c.priority OR (d.priority = c.priority AND (d.run_at, d.id) < (c.run_at, c.id))))
          < (%(caps)s::jsonb ->> c.kind)::integer
)
UPDATE ingestq_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_owner = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s, started_at = %(now)s, cancel_requested = false
FROM picked
WHERE j.id = picked.id
RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.state, j.run_at, j.attempt, j.max_attempts,
          j.dedupe_key, j.lease_owner, j.lease_expires_at, j.cancel_requested, j.progress, j.result,
          j.last_error, nullif(j.errors, '[]'), j.document_id, j.created_at, j.started_at, j.finished_at

-- name: job_claim_queues
-- Several queues: walks the global claim index in order, skipping other queues' rows (a btree cannot
-- merge several slices of ingestq_jobs_queue_claim in order on PostgreSQL < 17).
WITH candidates AS (
    SELECT id, kind, priority, run_at FROM ingestq_jobs
    WHERE state = 'queued' AND run_at <= %(now)s AND queue = ANY(%(queues)s::text[])
      AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
      AND (%(paused)s::text[] IS NULL OR NOT queue = ANY(%(paused)s::text[]))
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT c.id FROM candidates c
    WHERE %(caps)s::jsonb IS NULL OR NOT %(caps)s::jsonb ? c.kind
       OR (SELECT count(*) FROM candidates d
           WHERE d.kind = c.kind
             AND (d.priority > c.priority OR (d.priority = c.priority AND (d.run_at, d.id) < (c.run_at, c.id))))
          < (%(caps)s::jsonb ->> c.kind)::integer
)
UPDATE ingestq_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_owner = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s, started_at = %(now)s, cancel_requested = false
FROM picked
WHERE j.id = picked.id
RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.state, j.run_at, j.attempt, j.max_attempts,
          j.dedupe_key, j.lease_owner, j.lease_expires_at, j.cancel_requested, j.progress, j.result,
          j.last_error, nullif(j.errors, '[]'), j.document_id, j.created_at, j.started_at, j.finished_at

-- name: job_finish_many
-- Apply a batch of outcomes in one statement (one JSON document, as for inserts). The WHERE clause is
-- the fence: an outcome
-- applies only to a running row with the same owner and attempt, so a worker whose lease expired and
-- whose job was claimed again cannot overwrite it. RELEASED gives the attempt back; FAILED and RETRY
-- append to the error history, keeping the newest ERROR_HISTORY_LIMIT entries.
WITH o AS (
    SELECT * FROM json_to_recordset(%(outcomes)s::json)
         AS o(id bigint, lease_owner text, attempt integer, kind text, result jsonb, error text,
              run_at timestamptz)
)
UPDATE ingestq_jobs j
SET state = (CASE o.kind WHEN 'retry' THEN 'queued' WHEN 'released' THEN 'queued' ELSE o.kind END)
                ::ingestq_job_state,
    attempt = CASE WHEN o.kind = 'released' THEN j.attempt - 1 ELSE j.attempt END,
    run_at = CASE o.kind WHEN 'retry' THEN coalesce(o.run_at, %(now)s) WHEN 'released' THEN %(now)s
                         ELSE j.run_at END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    started_at = CASE WHEN o.kind = 'released' THEN NULL ELSE j.started_at END,
    result = CASE WHEN o.kind = 'succeeded' THEN o.result ELSE j.result END,
    last_error = CASE WHEN o.kind IN ('failed', 'retry') THEN coalesce(o.error, 'error')
                      WHEN o.kind = 'cancelled' THEN coalesce(o.error, j.last_error)
                      ELSE j.last_error END,
    errors = CASE WHEN o.kind IN ('failed', 'retry') THEN
                 (SELECT coalesce(jsonb_agg(e.value ORDER BY e.n), '[]'::jsonb)
                  FROM jsonb_array_elements(
                      j.errors || jsonb_build_array(jsonb_build_object(
                          'attempt', j.attempt, 'at', %(now)s::timestamptz,
                          'message', coalesce(o.error, 'error'))))
                      WITH ORDINALITY AS e(value, n)
                  WHERE e.n > jsonb_array_length(j.errors) + 1 - %(history)s)
             ELSE j.errors END,
    finished_at = CASE WHEN o.kind IN ('succeeded', 'failed', 'cancelled') THEN %(now)s END
FROM o
WHERE j.id = o.id AND j.state = 'running' AND j.lease_owner = o.lease_owner AND j.attempt = o.attempt
RETURNING j.id, j.state

-- name: job_finish_and_claim
-- A batch of outcomes and the next claim in ONE statement (job_finish_many as `finished`, one of the
-- job_claim* statements as `claimed`; the store splices them in where the markers are). One statement is
-- one implicit transaction and one round trip, and unlike a multi-statement string it is prepared once
-- per connection, so the server stops parsing and planning both statements for every batch (about
-- half of its CPU per batch of 10). Both UPDATEs read the statement's snapshot: the claim sees the rows
-- being finished as running and cannot pick them, and they touch disjoint rows. Claimed rows come first
-- with every column; each applied outcome is a row holding only its id (queue is NULL: queue is NOT
-- NULL on every job). Outcomes that re-queue a job need a notification and take the two-statement path.
WITH finished AS (
    {finish}
), claimed AS (
    {claim}
)
SELECT * FROM claimed
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL
FROM finished

-- name: job_progress
-- Fenced like job_finish_many: only the current holder may write progress.
UPDATE ingestq_jobs
SET progress = %(progress)s::jsonb
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(lease_owner)s AND attempt = %(attempt)s

-- name: job_cancel
-- queued: cancelled at once. running: only flagged; the worker sees the flag in its heartbeat reply and
-- stops at the next stage boundary. Finished rows do not match (the caller reads them unchanged).
UPDATE ingestq_jobs
SET state = CASE WHEN state = 'queued' THEN 'cancelled'::ingestq_job_state ELSE state END,
    finished_at = CASE WHEN state = 'queued' THEN %(now)s ELSE finished_at END,
    cancel_requested = CASE WHEN state = 'running' THEN true ELSE cancel_requested END
WHERE id = %(id)s AND state IN ('queued', 'running')
RETURNING id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
          lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
          started_at, finished_at

-- name: job_retry
-- A person's retry: due now, with at least one attempt left. The partial unique index refuses it (unique
-- violation) if another unfinished job now holds the same dedupe key.
UPDATE ingestq_jobs
SET state = 'queued', run_at = %(now)s, max_attempts = greatest(max_attempts, attempt + 1),
    cancel_requested = false, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND state IN ('failed', 'cancelled')
RETURNING id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
          lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
          started_at, finished_at

-- name: documents_settle_after_job
-- A job that concerns a document (document_id set, the collection in its payload) and ended without its
-- handler's finalizer (cancelled while queued, or cancelled or failed by the lease rescue) must not leave
-- that document pending forever: back to indexed when an indexed version is still served, else failed
-- with a reason. Only a pending document moves: one that a newer job already settled is left alone. The
-- store does not know which kinds ingest; a job without a document_id matches no document. Without
-- pgvector the documents table is missing: the caller runs this in a savepoint.
UPDATE ingestq_documents d
SET status = CASE WHEN j.state = 'cancelled' AND d.version > 0 THEN 'indexed' ELSE 'failed' END,
    error = CASE WHEN j.state = 'cancelled' AND d.version > 0 THEN NULL
                 WHEN j.state = 'cancelled' THEN %(cancelled)s
                 ELSE coalesce(j.last_error, 'failed') END,
    updated_at = %(now)s
FROM ingestq_jobs j
WHERE j.id = ANY(%(ids)s)
  AND j.state IN ('cancelled', 'failed')
  AND d.collection = j.payload->>'collection'
  AND d.id = j.document_id
  AND d.status = 'pending'

-- name: document_pending_after_retry
-- A person's retry of a job that concerns a document: the document is pending again until the job ends.
UPDATE ingestq_documents d
SET status = 'pending', error = NULL, updated_at = %(now)s
FROM ingestq_jobs j
WHERE j.id = %(id)s
  AND j.state = 'queued'
  AND d.collection = j.payload->>'collection'
  AND d.id = j.document_id

-- name: job_rescue_stale
-- Expired leases (ingestq_jobs_running index): back to queued due now with the attempt counted, or
-- failed when none is left. A job whose cancel was requested is cancelled rather than run again. SKIP
-- LOCKED: a row locked right now is being finished by its worker, and that outcome should win.
WITH stale AS (
    SELECT id FROM ingestq_jobs
    WHERE state = 'running' AND lease_expires_at < %(now)s
    FOR UPDATE SKIP LOCKED
)
UPDATE ingestq_jobs j
SET state = (CASE WHEN j.cancel_requested THEN 'cancelled'
                  WHEN j.attempt >= j.max_attempts THEN 'failed'
                  ELSE 'queued' END)::ingestq_job_state,
    run_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN j.run_at ELSE %(now)s END,
    finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN %(now)s END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    last_error = CASE WHEN j.cancel_requested THEN j.last_error ELSE %(message)s END,
    errors = CASE WHEN j.cancel_requested THEN j.errors ELSE
                 (SELECT coalesce(jsonb_agg(e.value ORDER BY e.n), '[]'::jsonb)
                  FROM jsonb_array_elements(
                      j.errors || jsonb_build_array(jsonb_build_object(
                          'attempt', j.attempt, 'at', %(now)s::timestamptz, 'message', %(message)s::text)))
                      WITH ORDINALITY AS e(value, n)
                  WHERE e.n > jsonb_array_length(j.errors) + 1 - %(history)s)
             END
FROM stale
WHERE j.id = stale.id
RETURNING j.id, j.state

-- name: job_position
-- 1-based rank in claim order among the due queued jobs of the job's queue, counted on the
-- ingestq_jobs_queue_claim index (only queued rows), so the cost does not depend on finished history.
-- A job not yet due is not among the counted rows: it comes after every due one.
SELECT (SELECT count(*) FROM ingestq_jobs o
        WHERE o.state = 'queued' AND o.queue = t.queue AND o.run_at <= %(now)s
          AND (o.priority > t.priority
               OR (o.priority = t.priority AND (o.run_at, o.id) <= (t.run_at, t.id))))
     + CASE WHEN t.run_at <= %(now)s THEN 0 ELSE 1 END
FROM ingestq_jobs t
WHERE t.id = %(id)s AND t.state = 'queued'

-- name: job_purge
DELETE FROM ingestq_jobs
WHERE state = ANY(%(states)s::ingestq_job_state[])
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(finished_before)s::timestamptz IS NULL OR finished_at < %(finished_before)s::timestamptz)

-- name: job_purge_count
-- What job_purge would delete with the same parameters (the dashboard shows it before purging).
SELECT count(*) FROM ingestq_jobs
WHERE state = ANY(%(states)s::ingestq_job_state[])
  AND state IN ('succeeded', 'failed', 'cancelled')
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(finished_before)s::timestamptz IS NULL OR finished_at < %(finished_before)s::timestamptz)

-- name: job_finished_buckets
-- Succeeded and failed jobs per time bucket since since: a range of the partial finished index per
-- state, so the cost follows the window, not the history.
SELECT floor(extract(epoch FROM finished_at - %(since)s::timestamptz) / %(width)s::float8)::int, state::text,
       count(*)
FROM ingestq_jobs
WHERE state IN ('succeeded', 'failed') AND finished_at >= %(since)s::timestamptz
GROUP BY 1, 2

-- name: job_prune
-- Retention: oldest finished rows past their state's cutoff (a NULL cutoff keeps that state forever),
-- at most `limit` per call so that one call never holds locks on a huge delete. One branch per state
-- so that each walks its slice of ingestq_jobs_finished (an OR of the three would not use the index).
DELETE FROM ingestq_jobs
WHERE id IN (
    (SELECT id FROM ingestq_jobs
     WHERE state = 'succeeded' AND finished_at < %(succeeded_before)s::timestamptz LIMIT %(limit)s)
    UNION ALL
    (SELECT id FROM ingestq_jobs
     WHERE state = 'failed' AND finished_at < %(failed_before)s::timestamptz LIMIT %(limit)s)
    UNION ALL
    (SELECT id FROM ingestq_jobs
     WHERE state = 'cancelled' AND finished_at < %(cancelled_before)s::timestamptz LIMIT %(limit)s)
    LIMIT %(limit)s
)

-- name: stats_unfinished
-- Two index scans over unfinished rows only (one partial index each).
SELECT queue, 'queued', count(*) FROM ingestq_jobs WHERE state = 'queued' GROUP BY queue
UNION ALL
SELECT queue, 'running', count(*) FROM ingestq_jobs WHERE state = 'running' GROUP BY queue

-- name: stats_finished
-- Kept by the triggers of migration 1; a few rows per finishing statement since the last prune.
SELECT queue, state::text, sum(n) FROM ingestq_finished_counts
GROUP BY queue, state
HAVING sum(n) > 0

-- name: finished_counts_compact
-- Fold the delta log into one row per (queue, state). Safe against concurrent writers: DELETE removes
-- only rows its snapshot sees and re-inserts exactly their sum; rows added meanwhile stay as they are.
WITH gone AS (DELETE FROM ingestq_finished_counts RETURNING queue, state, n)
INSERT INTO ingestq_finished_counts (queue, state, n)
SELECT queue, state, sum(n) FROM gone GROUP BY queue, state HAVING sum(n) <> 0

-- name: stats_oldest_due
SELECT queue, min(run_at) FROM ingestq_jobs
WHERE state = 'queued' AND run_at <= %(now)s
GROUP BY queue

-- name: stats_running_by_worker
SELECT queue, lease_owner, count(*) FROM ingestq_jobs WHERE state = 'running' GROUP BY queue, lease_owner

-- name: queue_configure
-- Sets max_depth only: a paused queue stays paused.
INSERT INTO ingestq_queues (name, max_depth) VALUES (%(name)s, %(max_depth)s)
ON CONFLICT (name) DO UPDATE SET max_depth = EXCLUDED.max_depth
RETURNING name, max_depth, paused_at

-- name: queue_pause
-- Pause (paused_at, or the earlier time of an already paused queue) or resume (NULL): max_depth stays.
INSERT INTO ingestq_queues (name, paused_at) VALUES (%(name)s, %(paused_at)s)
ON CONFLICT (name) DO UPDATE
SET paused_at = CASE WHEN EXCLUDED.paused_at IS NULL THEN NULL
                     ELSE coalesce(ingestq_queues.paused_at, EXCLUDED.paused_at) END
RETURNING name, max_depth, paused_at

-- name: queue_list
SELECT name, max_depth, paused_at FROM ingestq_queues ORDER BY name

-- name: queue_paused
-- The heartbeat's answer: the paused queues (few rows: the queues table holds only configured queues).
SELECT name FROM ingestq_queues WHERE paused_at IS NOT NULL

-- name: worker_upsert
INSERT INTO ingestq_workers
    (worker_id, hostname, pid, queues, concurrency, lease_seconds, started_at, heartbeat_at, unavailable)
VALUES (%(worker_id)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s, %(lease_seconds)s, %(now)s, %(now)s,
        %(unavailable)s)
ON CONFLICT (worker_id) DO UPDATE
SET hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
    concurrency = EXCLUDED.concurrency, lease_seconds = EXCLUDED.lease_seconds,
    heartbeat_at = EXCLUDED.heartbeat_at, unavailable = EXCLUDED.unavailable

-- name: job_extend_leases
-- Extend the leases of the jobs the worker still holds; the rows not returned are lost to it.
UPDATE ingestq_jobs
SET lease_expires_at = %(lease_expires_at)s
WHERE id = ANY(%(ids)s::bigint[]) AND state = 'running' AND lease_owner = %(worker_id)s
RETURNING id, cancel_requested

-- name: worker_delete_silent
-- A worker silent for more than 10 of its leases is gone.
DELETE FROM ingestq_workers
WHERE heartbeat_at < %(now)s::timestamptz - make_interval(secs => lease_seconds * 10)

-- name: worker_deregister
DELETE FROM ingestq_workers WHERE worker_id = %(worker_id)s

-- name: worker_list
SELECT w.worker_id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       (SELECT count(*) FROM ingestq_jobs j WHERE j.state = 'running' AND j.lease_owner = w.worker_id),
       w.unavailable, w.lease_seconds
FROM ingestq_workers w
ORDER BY w.worker_id

-- name: periodic_claim_slot
-- Record `slot` as the last one enqueued for `name` unless it (or a later one) already is. Concurrent
-- callers serialise on the row: the loser re-checks the WHERE against the winner's slot and gets no row.
INSERT INTO ingestq_periodic (name, last_slot) VALUES (%(name)s, %(slot)s)
ON CONFLICT (name) DO UPDATE SET last_slot = EXCLUDED.last_slot
WHERE ingestq_periodic.last_slot < EXCLUDED.last_slot
RETURNING name

-- name: periodic_set_job
UPDATE ingestq_periodic SET job_id = %(job_id)s WHERE name = %(name)s

-- name: migrations_lock
-- Serialise concurrent migrate() calls (the key is a fixed, arbitrary number: "ingestq" in ASCII).
SELECT pg_advisory_xact_lock(7236832819741041)

-- name: migrations_create_table
CREATE TABLE IF NOT EXISTS ingestq_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migrations_applied
SELECT version FROM ingestq_migrations ORDER BY version

-- name: migrations_table_exists
SELECT to_regclass('ingestq_migrations') IS NOT NULL

-- name: migrations_record
INSERT INTO ingestq_migrations (version, name) VALUES (%(version)s, %(name)s)
