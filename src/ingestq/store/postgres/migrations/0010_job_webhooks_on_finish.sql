-- The job outbox trigger of migration 7 cost every job, callbacks or not (bench/webhook_trigger_cost.py
-- --pg: 41 us per finished job instead of 29):
--
-- * PostgreSQL does not allow a subquery in a trigger's WHEN clause, so the clause could not ask whether
--   the job has callbacks: ingestq_job_webhooks() ran, in plpgsql, for every job that finished. A job now
--   carries `has_callbacks`, set by a trigger on ingestq_job_callbacks in the transaction that registers
--   them, and the WHEN clause reads it from the row in hand: the function runs only for jobs with
--   callbacks.
-- * It fired on `UPDATE OF state`, so its WHEN clause was tested for every row of every claim. A job ends
--   when `finished_at` is set: every statement that finishes one sets it (outcomes, the rescue, a
--   cancel), and claims, heartbeats and progress do not name it. (A raw SQL statement that finishes a job
--   must set `finished_at` too, as the statistics need it anyway.)
--
-- Adding a column with a constant default rewrites nothing. Not queue-only: the trigger comes with
-- migration 7.
ALTER TABLE ingestq_jobs ADD COLUMN has_callbacks boolean NOT NULL DEFAULT false;

UPDATE ingestq_jobs SET has_callbacks = true WHERE id IN (SELECT job_id FROM ingestq_job_callbacks);

CREATE FUNCTION ingestq_job_callbacks_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ingestq_jobs SET has_callbacks = true WHERE id = NEW.job_id AND NOT has_callbacks;
    RETURN NULL;
END
$$;
CREATE TRIGGER ingestq_job_callbacks_flag AFTER INSERT ON ingestq_job_callbacks FOR EACH ROW
    EXECUTE FUNCTION ingestq_job_callbacks_flag();

DROP TRIGGER ingestq_jobs_webhooks ON ingestq_jobs;

CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF finished_at ON ingestq_jobs FOR EACH ROW
    WHEN (NEW.has_callbacks AND NEW.state IN ('succeeded', 'failed', 'cancelled')
          AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION ingestq_job_webhooks();
