-- SQLite dialect of ingestq's named queries: the same operation has the same name as in
-- store/postgres/queries.sql (tests/unit/test_queries.py lists the dialect-only names and why).
-- Every query that returns jobs lists the columns in the order of ingestq.model.job.Job's fields.

-- ===== schema ========================================================================================

-- name: migrations_create_table
CREATE TABLE IF NOT EXISTS ingestq_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- name: migrations_table_exists
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ingestq_migrations'

-- name: schema_version
SELECT coalesce(max(version), 0) FROM ingestq_migrations

-- name: migrations_record
INSERT INTO ingestq_migrations (version, name, applied_at) VALUES (:version, :name, :applied_at)

-- ===== jobs: insert and read =========================================================================

-- name: job_insert
INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id,
                          created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id

-- name: job_insert_bulk
-- job_insert without RETURNING, for executemany: under the write lock AUTOINCREMENT hands out
-- consecutive ids, so the caller derives them from last_insert_rowid() (a quarter less work per row).
INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, dedupe_key, document_id,
                          created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: job_get
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs WHERE id = :id

-- name: job_get_unfinished_by_dedupe_key
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs
WHERE dedupe_key = :dedupe_key AND state IN ('queued', 'running')

-- name: queue_depth
-- Unfinished jobs of one queue (backpressure): queued ones on the queue's slice of the claim index,
-- running ones on the lease index.
SELECT (SELECT count(*) FROM ingestq_jobs INDEXED BY ingestq_jobs_claim_queue
        WHERE state = 'queued' AND queue = :queue)
     + (SELECT count(*) FROM ingestq_jobs INDEXED BY ingestq_jobs_lease
        WHERE state = 'running' AND queue = :queue)

-- name: job_list
-- Filters are JSON arrays (NULL: no filter) so that one prepared statement serves every combination.
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs
WHERE (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:document_id IS NULL OR document_id = :document_id)
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: job_list_document
-- job_list for one document: its index, whatever the history.
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs INDEXED BY ingestq_jobs_document
WHERE document_id = :document_id
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: job_list_queued
-- job_list of queued jobs: reads the queued rows only through a partial index, so listing them does not walk
-- the succeeded history (succeeded jobs, the bulk of it, are listed by job_list).
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs INDEXED BY ingestq_jobs_claim
WHERE state = 'queued'
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: job_list_running
-- job_list of running jobs: reads the running rows only through a partial index, so listing them does not walk
-- the succeeded history (succeeded jobs, the bulk of it, are listed by job_list).
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs INDEXED BY ingestq_jobs_lease
WHERE state = 'running'
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: job_list_failed
-- job_list of failed jobs: reads the failed rows only through a partial index, so listing them does not walk
-- the succeeded history (succeeded jobs, the bulk of it, are listed by job_list).
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs INDEXED BY ingestq_jobs_finished
WHERE state = 'failed' AND state IN ('succeeded', 'failed', 'cancelled')  -- proves the partial index
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: job_list_cancelled
-- job_list of cancelled jobs: reads the cancelled rows only through a partial index, so listing them does not walk
-- the succeeded history (succeeded jobs, the bulk of it, are listed by job_list).
SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
       lease_expires_at, cancel_requested, progress, result, last_error, errors, document_id, created_at,
       started_at, finished_at
FROM ingestq_jobs INDEXED BY ingestq_jobs_finished
WHERE state = 'cancelled' AND state IN ('succeeded', 'failed', 'cancelled')  -- proves the partial index
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- ===== jobs: claim and outcomes ======================================================================

-- The claims are spliced together by the store from the pieces below: `claim_update` with {candidates}
-- replaced by one of the `claim_candidates*` selections (which queue or queues), wrapped in
-- `claim_capped` for a claim that must respect kinds' caps, with `claim_exclude` at {exclude} for a claim
-- that leaves out paused queues. The plain form is the worker's usual claim:
-- the caps' per-candidate count costs about 70 us per execution even when no cap applies. The store
-- names the results job_claim, job_claim_queue, job_claim_queues and the same with `_excluding`,
-- `_capped` or both.

-- name: claim_update
-- Rows come back in no particular order; the store sorts them into claim order. Only the columns a
-- claim does not set itself come back (the store knows state, owner, lease and start time).
UPDATE ingestq_jobs
SET state = 'running', attempt = attempt + 1, lease_owner = :worker_id, lease_expires_at = :lease_until,
    started_at = :now, cancel_requested = 0
WHERE id IN ({candidates})
RETURNING id, queue, kind, payload, priority, run_at, attempt, max_attempts, dedupe_key, progress, result,
          last_error, errors, document_id, created_at

-- name: claim_candidates
-- Every queue. {columns}: `id`, or what claim_capped needs. {exclude}: nothing, or claim_exclude.
SELECT {columns} FROM ingestq_jobs INDEXED BY ingestq_jobs_claim
WHERE state = 'queued' AND run_at <= :now
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  {exclude}
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: claim_candidates_queue
-- One queue: walks that queue's slice of the claim index.
SELECT {columns} FROM ingestq_jobs INDEXED BY ingestq_jobs_claim_queue
WHERE state = 'queued' AND queue = :queue AND run_at <= :now
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  {exclude}
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: claim_candidates_queues
-- Several queues (a JSON array).
SELECT {columns} FROM ingestq_jobs INDEXED BY ingestq_jobs_claim
WHERE state = 'queued' AND run_at <= :now
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
  {exclude}
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: claim_exclude
-- ClaimRequest.exclude_queues (the paused queues, a JSON array), spliced in only for a claim that has
-- some: a filter on the rows the index walk finds. Left out, the claim is the statement it was before
-- queues could be paused (an `:paused IS NULL OR ...` test would cost every candidate row).
AND queue NOT IN (SELECT value FROM json_each(:paused))

-- name: claim_capped
-- `caps` (a JSON object kind -> n): of the candidates, at most n of such a kind are claimed, the first
-- in claim order (TaskSpec.concurrency, per worker; see the PostgreSQL job_claim).
WITH candidates AS MATERIALIZED ({candidates})
SELECT c.id FROM candidates c
WHERE NOT EXISTS (SELECT 1 FROM json_each(:caps) WHERE key = c.kind)
   OR (SELECT count(*) FROM candidates d
       WHERE d.kind = c.kind
         AND (d.priority > c.priority OR (d.priority = c.priority AND (d.run_at, d.id) < (c.run_at, c.id))))
      < (SELECT value FROM json_each(:caps) WHERE key = c.kind)

-- name: job_succeed
-- Every outcome is fenced: it applies only to the attempt the caller holds. All the successes of a
-- batch in one statement, as a JSON array of [id, owner, attempt, result as JSON text or null]: an
-- UPDATE ... RETURNING that changes `state` has a fixed cost per execution that grows with the table
-- (about 80 us with 20,000 queued jobs, against 6 us per row here), so a statement per job (executemany)
-- cost more than everything else the worker does per job.
UPDATE ingestq_jobs
SET state = 'succeeded', result = o.result, finished_at = :now, lease_owner = NULL, lease_expires_at = NULL
FROM (
    SELECT value ->> 0 AS job_id, value ->> 1 AS owner, value ->> 2 AS job_attempt, value ->> 3 AS result
    FROM json_each(:outcomes)
) AS o
WHERE id = o.job_id AND state = 'running' AND lease_owner = o.owner AND attempt = o.job_attempt
RETURNING id, queue

-- The other outcomes, each kind in one statement too: :outcomes is a JSON array of
-- [id, owner, attempt, error or null, run_at or null] (a retry or failure storm costs a statement per
-- batch, not per job).

-- name: job_retry_later
-- History keeps the last :limit errors: at the limit, the oldest is dropped before appending.
UPDATE ingestq_jobs
SET state = 'queued', run_at = o.run_at, lease_owner = NULL, lease_expires_at = NULL,
    last_error = o.error,
    errors = json_insert(
        CASE WHEN json_array_length(errors) >= :limit THEN json_remove(errors, '$[0]') ELSE errors END,
        '$[#]', json_object('attempt', attempt, 'at', :now, 'message', o.error))
FROM (
    SELECT value ->> 0 AS job_id, value ->> 1 AS owner, value ->> 2 AS job_attempt, value ->> 3 AS error,
           value ->> 4 AS run_at
    FROM json_each(:outcomes)
) AS o
WHERE id = o.job_id AND state = 'running' AND lease_owner = o.owner AND attempt = o.job_attempt
RETURNING id, queue

-- name: job_fail
UPDATE ingestq_jobs
SET state = 'failed', finished_at = :now, lease_owner = NULL, lease_expires_at = NULL,
    last_error = o.error,
    errors = json_insert(
        CASE WHEN json_array_length(errors) >= :limit THEN json_remove(errors, '$[0]') ELSE errors END,
        '$[#]', json_object('attempt', attempt, 'at', :now, 'message', o.error))
FROM (
    SELECT value ->> 0 AS job_id, value ->> 1 AS owner, value ->> 2 AS job_attempt, value ->> 3 AS error
    FROM json_each(:outcomes)
) AS o
WHERE id = o.job_id AND state = 'running' AND lease_owner = o.owner AND attempt = o.job_attempt
RETURNING id, queue

-- name: job_mark_cancelled
UPDATE ingestq_jobs
SET state = 'cancelled', finished_at = :now, lease_owner = NULL, lease_expires_at = NULL,
    last_error = coalesce(o.error, last_error)
FROM (
    SELECT value ->> 0 AS job_id, value ->> 1 AS owner, value ->> 2 AS job_attempt, value ->> 3 AS error
    FROM json_each(:outcomes)
) AS o
WHERE id = o.job_id AND state = 'running' AND lease_owner = o.owner AND attempt = o.job_attempt
RETURNING id, queue

-- name: job_release
-- Graceful shutdown: the attempt was not really made, so it is given back.
UPDATE ingestq_jobs
SET state = 'queued', run_at = :now, attempt = attempt - 1, lease_owner = NULL, lease_expires_at = NULL,
    started_at = NULL
FROM (
    SELECT value ->> 0 AS job_id, value ->> 1 AS owner, value ->> 2 AS job_attempt
    FROM json_each(:outcomes)
) AS o
WHERE id = o.job_id AND state = 'running' AND lease_owner = o.owner AND attempt = o.job_attempt
RETURNING id, queue

-- name: job_progress
UPDATE ingestq_jobs
SET progress = :progress
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempt = :attempt
RETURNING id

-- name: job_rescue_stale
-- Leases that expired: their worker died or hung. The attempt it made counts. A job whose cancel was
-- requested is cancelled rather than run again.
UPDATE ingestq_jobs
SET state = CASE WHEN cancel_requested THEN 'cancelled'
                 WHEN attempt >= max_attempts THEN 'failed'
                 ELSE 'queued' END,
    finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN :now END,
    run_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN run_at ELSE :now END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    last_error = CASE WHEN cancel_requested THEN last_error ELSE :error END,
    errors = CASE WHEN cancel_requested THEN errors ELSE json_insert(
        CASE WHEN json_array_length(errors) >= :limit THEN json_remove(errors, '$[0]') ELSE errors END,
        '$[#]', json_object('attempt', attempt, 'at', :now, 'message', :error)) END
WHERE state = 'running' AND lease_expires_at < :now
RETURNING id, state, queue

-- ===== jobs: what a person does ======================================================================

-- name: job_cancel_queued
UPDATE ingestq_jobs SET state = 'cancelled', finished_at = :now
WHERE id = :id AND state = 'queued'
RETURNING queue

-- name: job_cancel_running
UPDATE ingestq_jobs SET cancel_requested = 1
WHERE id = :id AND state = 'running'

-- name: documents_settle_after_job
-- A job that concerns a document (document_id set, the collection in its payload) and ended without its
-- handler's finalizer (cancelled while queued, or cancelled or failed by the lease rescue) must not leave
-- that document pending forever: back to indexed when an indexed version is still served, else failed
-- with a reason. Only a pending document moves: one that a newer job already settled is left alone. The
-- store does not know which kinds ingest; a job without a document_id matches no document.
UPDATE ingestq_documents AS d
SET status = CASE WHEN j.state = 'cancelled' AND d.version > 0 THEN 'indexed' ELSE 'failed' END,
    error = CASE WHEN j.state = 'cancelled' AND d.version > 0 THEN NULL
                 WHEN j.state = 'cancelled' THEN :cancelled
                 ELSE coalesce(j.last_error, 'failed') END,
    updated_at = :now
FROM ingestq_jobs AS j
WHERE j.id IN (SELECT value FROM json_each(:ids))
  AND j.state IN ('cancelled', 'failed')
  AND d.collection = json_extract(j.payload, '$.collection')
  AND d.id = j.document_id
  AND d.status = 'pending'

-- name: document_pending_after_retry
-- A person's retry of a job that concerns a document: the document is pending again until the job ends.
UPDATE ingestq_documents AS d
SET status = 'pending', error = NULL, updated_at = :now
FROM ingestq_jobs AS j
WHERE j.id = :id
  AND j.state = 'queued'
  AND d.collection = json_extract(j.payload, '$.collection')
  AND d.id = j.document_id

-- name: job_retry
-- Due now, with at least one attempt left.
UPDATE ingestq_jobs
SET state = 'queued', run_at = :now, finished_at = NULL, cancel_requested = 0, lease_owner = NULL,
    lease_expires_at = NULL, max_attempts = max(max_attempts, attempt + 1)
WHERE id = :id AND state IN ('failed', 'cancelled')
RETURNING queue

-- name: job_position
-- 1-based place in claim order among the due queued jobs of the job's queue.
SELECT count(*) FROM ingestq_jobs INDEXED BY ingestq_jobs_claim_queue
WHERE state = 'queued' AND queue = :queue AND run_at <= :now
  AND (priority > :priority
       OR (priority = :priority AND (run_at < :run_at OR (run_at = :run_at AND id <= :id))))

-- name: job_purge
DELETE FROM ingestq_jobs
WHERE state IN (SELECT value FROM json_each(:states))
  AND (:queue IS NULL OR queue = :queue)
  AND (:finished_before IS NULL OR finished_at < :finished_before)
RETURNING queue, state

-- name: job_purge_count
-- What job_purge would delete, one state at a time (admin.job_purge_count sums them): `state = ?` plus
-- the index's own IN list and a bound on finished_at (+inf for none) make it a range of the partial
-- finished index; json_each and `IS NULL OR` would leave the planner a table scan.
SELECT count(*) FROM ingestq_jobs
WHERE state = :state AND state IN ('succeeded', 'failed', 'cancelled')
  AND finished_at < :finished_before
  AND (:queue IS NULL OR queue = :queue)

-- name: job_finished_buckets
-- Succeeded and failed jobs per time bucket since :since, as one range count of the partial finished
-- index per bucket and state: counting index entries in place. (A GROUP BY over the bucket expression
-- sorted every finished row of the window in a temporary B-tree: 475 ms for 1,000,000 jobs finished in
-- the last hour, against 48 ms this way.) The last bucket is open-ended, so a finish stamped after it
-- by a skewed clock still counts; job_finished_last gives the number of buckets.
WITH RECURSIVE bucket(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bucket WHERE i + 1 < :buckets),
     finished(state) AS (VALUES ('succeeded'), ('failed'))
SELECT i, finished.state, (
    SELECT count(*) FROM ingestq_jobs AS j
    WHERE j.state = finished.state AND j.state IN ('succeeded', 'failed', 'cancelled')
      AND j.finished_at >= :since + i * :width
      AND j.finished_at < CASE WHEN i + 1 = :buckets THEN 9e18 ELSE :since + (i + 1) * :width END
) AS n
FROM bucket, finished

-- name: job_finished_last
-- The newest finish of a state: the last entry of its range of the partial finished index.
SELECT max(finished_at) FROM ingestq_jobs
WHERE state = :state AND state IN ('succeeded', 'failed', 'cancelled')

-- name: job_prune
DELETE FROM ingestq_jobs
WHERE id IN (
    -- the literal IN list lets the planner prove the partial index ingestq_jobs_finished applies
    SELECT id FROM ingestq_jobs
    WHERE state = :state AND state IN ('succeeded', 'failed', 'cancelled') AND finished_at < :before
    LIMIT :limit
)
RETURNING queue, state

-- ===== stats =========================================================================================

-- name: stats_queued
SELECT queue, count(*) FROM ingestq_jobs INDEXED BY ingestq_jobs_claim_queue
WHERE state = 'queued'
GROUP BY queue

-- name: finished_counts_add
INSERT INTO ingestq_finished_counts (queue, state, n) VALUES (?, ?, ?)
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n

-- name: stats_finished
SELECT queue, state, n FROM ingestq_finished_counts WHERE n > 0

-- name: stats_oldest_due
SELECT queue, min(run_at) FROM ingestq_jobs INDEXED BY ingestq_jobs_claim_queue
WHERE state = 'queued' AND run_at <= :now
GROUP BY queue

-- name: stats_running_by_worker
SELECT queue, lease_owner, count(*) FROM ingestq_jobs INDEXED BY ingestq_jobs_lease
WHERE state = 'running'
GROUP BY queue, lease_owner

-- ===== queues, workers, periodic =====================================================================

-- name: queue_configure
-- Sets max_depth only: a paused queue stays paused.
INSERT INTO ingestq_queues (name, max_depth) VALUES (:name, :max_depth)
ON CONFLICT (name) DO UPDATE SET max_depth = excluded.max_depth
RETURNING name, max_depth, paused_at

-- name: queue_pause
-- Pause (:paused_at, or the earlier time of an already paused queue) or resume (NULL): max_depth stays.
INSERT INTO ingestq_queues (name, paused_at) VALUES (:name, :paused_at)
ON CONFLICT (name) DO UPDATE
SET paused_at = CASE WHEN excluded.paused_at IS NULL THEN NULL ELSE coalesce(paused_at, excluded.paused_at) END
RETURNING name, max_depth, paused_at

-- name: queue_list
SELECT name, max_depth, paused_at FROM ingestq_queues ORDER BY name

-- name: queue_paused
-- The heartbeat's answer: the paused queues (few rows: the queues table holds only configured queues).
SELECT name FROM ingestq_queues WHERE paused_at IS NOT NULL

-- name: queue_names
SELECT name FROM ingestq_queues

-- name: queue_max_depths
SELECT name, max_depth FROM ingestq_queues WHERE max_depth IS NOT NULL

-- name: worker_upsert
INSERT INTO ingestq_workers (worker_id, hostname, pid, queues, concurrency, lease_seconds, started_at,
                             heartbeat_at, unavailable)
VALUES (:worker_id, :hostname, :pid, :queues, :concurrency, :lease_seconds, :now, :now, :unavailable)
ON CONFLICT (worker_id) DO UPDATE SET
    hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, lease_seconds = excluded.lease_seconds,
    heartbeat_at = excluded.heartbeat_at, unavailable = excluded.unavailable

-- name: job_extend_leases
-- Extends only what the worker still owns; ids missing from the result were lost.
UPDATE ingestq_jobs SET lease_expires_at = :lease_until
WHERE id IN (SELECT value FROM json_each(:job_ids)) AND state = 'running' AND lease_owner = :worker_id
RETURNING id, cancel_requested

-- name: worker_delete_silent
DELETE FROM ingestq_workers WHERE heartbeat_at < :now - 10 * lease_seconds

-- name: worker_deregister
DELETE FROM ingestq_workers WHERE worker_id = :worker_id

-- name: worker_list
SELECT w.worker_id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       (SELECT count(*) FROM ingestq_jobs j INDEXED BY ingestq_jobs_lease
        WHERE j.state = 'running' AND j.lease_owner = w.worker_id),
       w.unavailable, w.lease_seconds
FROM ingestq_workers w
ORDER BY w.worker_id

-- name: periodic_claim_slot
-- Returns a row only for the first caller of a slot newer than the last one enqueued.
INSERT INTO ingestq_periodic (name, last_slot) VALUES (:name, :slot)
ON CONFLICT (name) DO UPDATE SET last_slot = excluded.last_slot WHERE last_slot < excluded.last_slot
RETURNING name

-- name: job_watch
-- The change feed's look at the jobs table (api/events/feed.py diffs successive answers): jobs inserted
-- after `after_id` (the primary key, ascending, at most `limit`), every running job (the partial index
-- ingestq_jobs_lease) and jobs finished at or after `finished_since` (the partial index
-- ingestq_jobs_finished). Each part reads only its index, so the cost follows the live jobs and the
-- recent finishes, not the history (results and error histories are left out: events do not carry
-- them); nothing is written, so the claim/finish hot path is untouched.
SELECT * FROM (
    SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
           lease_expires_at, cancel_requested, progress, NULL AS result, last_error, '[]' AS errors, document_id,
           created_at, started_at, finished_at
    FROM ingestq_jobs WHERE id > :after_id ORDER BY id LIMIT :limit)
UNION ALL
SELECT * FROM (
    SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
           lease_expires_at, cancel_requested, progress, NULL AS result, last_error, '[]' AS errors, document_id,
           created_at, started_at, finished_at
    FROM ingestq_jobs INDEXED BY ingestq_jobs_lease
    WHERE state = 'running' AND id <= :after_id LIMIT :limit)
UNION ALL
SELECT * FROM (
    SELECT id, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_owner,
           lease_expires_at, cancel_requested, progress, NULL AS result, last_error, '[]' AS errors, document_id,
           created_at, started_at, finished_at
    FROM ingestq_jobs INDEXED BY ingestq_jobs_finished
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= :finished_since
      AND id <= :after_id LIMIT :limit)
