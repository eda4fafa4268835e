-- The job outbox trigger of migration 7 cost every job, callbacks or not (bench/webhook_trigger_cost.py):
--
-- * It fired on `UPDATE OF state`, so every statement that sets `state` compiled it in, the claims most
--   of all (queued -> running), where its WHEN clause is always false. A job ends when `finished_at` is
--   set: every statement that finishes one sets it (outcomes, the rescue, a cancel), and claims,
--   heartbeats, progress, retries and releases do not name it, so they no longer run the trigger. (A raw
--   SQL statement that finishes a job must set `finished_at` too, as the statistics need it anyway.)
-- * Its WHEN clause probed ingestq_job_callbacks for every finished job. A job now carries
--   `has_callbacks`, set by a trigger on ingestq_job_callbacks in the transaction that registers them, so
--   the test reads the row in hand. (SQLite still enters a row trigger's sub-program once per finished
--   row to test its WHEN clause: that part of the cost stays.)
--
-- Applies after 9.
ALTER TABLE ingestq_jobs ADD COLUMN has_callbacks INTEGER NOT NULL DEFAULT 0;

UPDATE ingestq_jobs SET has_callbacks = 1 WHERE id IN (SELECT job_id FROM ingestq_job_callbacks);

CREATE TRIGGER ingestq_job_callbacks_flag AFTER INSERT ON ingestq_job_callbacks
BEGIN
    UPDATE ingestq_jobs SET has_callbacks = 1 WHERE id = NEW.job_id AND has_callbacks = 0;
END;

DROP TRIGGER ingestq_jobs_webhooks;

CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF finished_at ON ingestq_jobs
WHEN NEW.has_callbacks AND NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state <> NEW.state
BEGIN
    INSERT INTO ingestq_webhook_deliveries (message_id, event, url, body, queue, max_attempts,
                                            subject_job_id, document_id, created_at)
    SELECT 'msg_' || lower(hex(randomblob(16))), 'job.' || NEW.state, c.url,
           json_object(
               'type', 'job.' || NEW.state,
               'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', coalesce(NEW.finished_at, NEW.run_at), 'unixepoch'),
               'data', json_object(
                   'job_id', NEW.id, 'kind', NEW.kind, 'queue', NEW.queue, 'state', NEW.state,
                   'attempt', NEW.attempt, 'document_id', NEW.document_id, 'result', json(NEW.result),
                   'error', NEW.last_error)),
           c.queue, c.max_attempts, NEW.id, NEW.document_id, coalesce(NEW.finished_at, NEW.run_at)
    FROM ingestq_job_callbacks c WHERE c.job_id = NEW.id
    ORDER BY c.url;
END;
