-- Webhooks, SQLite dialect: the same names as store/postgres/webhook_queries.sql. Deliveries themselves
-- are inserted by the triggers of migration 7 (the outbox), never here, except a person's redelivery.

-- name: webhook_endpoints_clear
DELETE FROM ingestq_webhook_endpoints WHERE collection = :collection

-- name: webhook_endpoint_insert
INSERT INTO ingestq_webhook_endpoints (collection, url, queue, max_attempts, created_at)
VALUES (:collection, :url, :queue, :max_attempts, :now)

-- name: webhook_endpoints_list
SELECT collection, url, queue, max_attempts, created_at FROM ingestq_webhook_endpoints
WHERE :collection IS NULL OR collection = :collection
ORDER BY collection, url

-- name: job_callback_insert
INSERT INTO ingestq_job_callbacks (job_id, url, queue, max_attempts)
VALUES (:job_id, :url, :queue, :max_attempts)
ON CONFLICT DO NOTHING

-- name: job_callbacks_list
SELECT url FROM ingestq_job_callbacks WHERE job_id = :job_id ORDER BY url

-- name: document_callback_insert
INSERT INTO ingestq_document_callbacks (collection, document_id, url, queue, max_attempts)
VALUES (:collection, :document_id, :url, :queue, :max_attempts)
ON CONFLICT DO NOTHING

-- name: webhook_delivery_get
SELECT id, message_id, event, url, body, queue, max_attempts, subject_job_id, collection, document_id,
       job_id, status, attempts, last_status_code, last_error, created_at, last_attempt_at, delivered_at
FROM ingestq_webhook_deliveries WHERE id = :id

-- name: webhook_delivery_list
-- Keyset pagination on the primary key, newest first; a NULL filter means "any".
SELECT id, message_id, event, url, body, queue, max_attempts, subject_job_id, collection, document_id,
       job_id, status, attempts, last_status_code, last_error, created_at, last_attempt_at, delivered_at
FROM ingestq_webhook_deliveries
WHERE (:status IS NULL OR status = :status)
  AND (:event IS NULL OR event = :event)
  AND (:collection IS NULL OR collection = :collection)
  AND (:subject_job_id IS NULL OR subject_job_id = :subject_job_id)
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: webhook_attempts_list
SELECT delivery_id, n, job_id, at, status_code, error, duration_ms FROM ingestq_webhook_attempts
WHERE delivery_id = :delivery_id ORDER BY n

-- name: webhook_attempt_insert
-- Attempts count across the delivery's jobs: a redelivery continues at the next n.
INSERT INTO ingestq_webhook_attempts (delivery_id, n, job_id, at, status_code, error, duration_ms)
SELECT :delivery_id, coalesce(max(n), 0) + 1, :job_id, :now, :status_code, :error, :duration_ms
FROM ingestq_webhook_attempts WHERE delivery_id = :delivery_id

-- name: webhook_delivery_attempted
UPDATE ingestq_webhook_deliveries
SET attempts = attempts + 1, status = :status, last_status_code = :status_code, last_error = :error,
    last_attempt_at = :now, delivered_at = CASE WHEN :status = 'delivered' THEN :now ELSE delivered_at END
WHERE id = :delivery_id

-- name: webhook_delivery_live_job
-- The delivery's latest job, if it is still queued or running (a redelivery would send it twice).
SELECT j.id FROM ingestq_webhook_deliveries d JOIN ingestq_jobs j ON j.id = d.job_id
WHERE d.id = :id AND j.state IN ('queued', 'running')

-- name: webhook_redeliver_job
INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, created_at)
SELECT queue, 'ingestq.webhook', json_object('delivery_id', id), 0, :now, max_attempts, :now
FROM ingestq_webhook_deliveries WHERE id = :id
RETURNING id

-- name: webhook_delivery_requeued
UPDATE ingestq_webhook_deliveries SET status = 'pending', job_id = :job_id WHERE id = :id

-- name: webhook_prune
-- The retention cleaner: finished deliveries, oldest first through the (status, id) index; attempts go
-- with them (ON DELETE CASCADE). A pending delivery has a live job and is never taken.
DELETE FROM ingestq_webhook_deliveries WHERE id IN (
    SELECT id FROM ingestq_webhook_deliveries
    WHERE status = :status AND status <> 'pending'
      AND coalesce(delivered_at, last_attempt_at, created_at) < :before
    ORDER BY id LIMIT :limit
)
