-- Webhooks (docs/webhooks.md): the callback URLs, and a transactional outbox. A delivery is a row of
-- ingestq_webhook_deliveries plus a job of kind `ingestq.webhook`, and both are inserted by triggers in
-- the very transaction that finishes a job or settles a document: whichever statement does it (a worker's
-- outcome, the rescuer, a person's cancel, raw SQL), a committed outcome has its deliveries enqueued, and
-- a process that dies before the commit leaves neither. Applies after 6. Builds on the
-- documents table (2), so it is not queue-only.

-- A collection's endpoints: every document of the collection that becomes indexed, failed or
-- quarantined is announced to each of them. `queue` and `max_attempts` are the delivery jobs' (from the
-- settings of whoever registered the URL).
CREATE TABLE ingestq_webhook_endpoints (
    collection   text NOT NULL,
    url          text NOT NULL,
    queue        text NOT NULL,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (collection, url)
);

-- One request's callbacks (POST /v1/jobs): announced once, when that job ends.
CREATE TABLE ingestq_job_callbacks (
    job_id       bigint NOT NULL,
    url          text NOT NULL,
    queue        text NOT NULL,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    PRIMARY KEY (job_id, url)
);

-- One request's callbacks for a document (POST /v1/documents): announced once, the next time the
-- document is indexed, failed or quarantined, then removed. Registered before its job is enqueued, so a
-- fast worker cannot settle the document before they exist.
CREATE TABLE ingestq_document_callbacks (
    collection   text NOT NULL,
    document_id  text NOT NULL,
    url          text NOT NULL,
    queue        text NOT NULL,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    PRIMARY KEY (collection, document_id, url)
);

-- What is sent, fixed when it is enqueued (the same body, so the same signature input, on every attempt
-- and redelivery) and what became of it. `message_id` is the `webhook-id` header: stable across retries
-- and redeliveries, so a receiver can drop duplicates. `job_id`: the delivery's latest job.
CREATE TABLE ingestq_webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       text NOT NULL UNIQUE,
    event            text NOT NULL,
    url              text NOT NULL,
    body             text NOT NULL,
    queue            text NOT NULL,
    max_attempts     integer NOT NULL,
    subject_job_id   bigint,
    collection       text,
    document_id      text,
    job_id           bigint,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz
);
CREATE INDEX ingestq_webhook_deliveries_status ON ingestq_webhook_deliveries (status, id);

-- One row per attempt (the handler records it, before it raises for a retry).
CREATE TABLE ingestq_webhook_attempts (
    delivery_id  bigint NOT NULL REFERENCES ingestq_webhook_deliveries (id) ON DELETE CASCADE,
    n            integer NOT NULL,
    job_id       bigint NOT NULL,
    at           timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  double precision NOT NULL,
    PRIMARY KEY (delivery_id, n)
);

CREATE FUNCTION ingestq_webhook_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The outbox: a delivery row enqueues its job in the same transaction (and the job id is written back).
-- The notification goes out at commit, like any enqueue's.
CREATE FUNCTION ingestq_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_job bigint;
BEGIN
    INSERT INTO ingestq_jobs (queue, kind, payload, run_at, max_attempts, created_at)
    VALUES (NEW.queue, 'ingestq.webhook', jsonb_build_object('delivery_id', NEW.id), NEW.created_at,
            NEW.max_attempts, NEW.created_at)
    RETURNING id INTO new_job;
    UPDATE ingestq_webhook_deliveries SET job_id = new_job WHERE id = NEW.id;
    PERFORM pg_notify('ingestq_jobs', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER ingestq_webhook_deliveries_enqueue AFTER INSERT ON ingestq_webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION ingestq_webhook_enqueue();

-- A job with callbacks ends (succeeded, failed or cancelled, by whatever statement). A row trigger with
-- a WHEN clause: the function runs only for rows that just finished, not for claims or heartbeats.
CREATE FUNCTION ingestq_job_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ingestq_webhook_deliveries (message_id, event, url, body, queue, max_attempts,
                                            subject_job_id, document_id, created_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), 'job.' || NEW.state, c.url,
           jsonb_build_object(
               'type', 'job.' || NEW.state,
               'timestamp', ingestq_webhook_time(coalesce(NEW.finished_at, NEW.run_at)),
               'data', jsonb_build_object(
                   'job_id', NEW.id, 'kind', NEW.kind, 'queue', NEW.queue, 'state', NEW.state,
                   'attempt', NEW.attempt, 'document_id', NEW.document_id, 'result', NEW.result,
                   'error', NEW.last_error))::text,
           c.queue, c.max_attempts, NEW.id, NEW.document_id, coalesce(NEW.finished_at, NEW.run_at)
    FROM ingestq_job_callbacks c WHERE c.job_id = NEW.id
    ORDER BY c.url;
    RETURN NULL;
END
$$;
CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF state ON ingestq_jobs FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION ingestq_job_webhooks();

-- A document becomes indexed, failed or quarantined: its collection's endpoints, and its one-shot
-- request callbacks (then removed).
CREATE FUNCTION ingestq_document_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ingestq_webhook_deliveries (message_id, event, url, body, queue, max_attempts,
                                            collection, document_id, created_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), 'document.' || NEW.status, t.url,
           jsonb_build_object(
               'type', 'document.' || NEW.status,
               'timestamp', ingestq_webhook_time(NEW.updated_at),
               'data', jsonb_build_object(
                   'collection', NEW.collection, 'document_id', NEW.id, 'status', NEW.status,
                   'version', NEW.version, 'chunk_count', NEW.chunk_count, 'title', NEW.title,
                   'error', NEW.error))::text,
           t.queue, t.max_attempts, NEW.collection, NEW.id, NEW.updated_at
    FROM (SELECT url, queue, max_attempts FROM ingestq_webhook_endpoints WHERE collection = NEW.collection
          UNION
          SELECT url, queue, max_attempts FROM ingestq_document_callbacks
          WHERE collection = NEW.collection AND document_id = NEW.id) t
    ORDER BY t.url;
    DELETE FROM ingestq_document_callbacks WHERE collection = NEW.collection AND document_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER ingestq_documents_webhooks AFTER UPDATE OF status, version ON ingestq_documents FOR EACH ROW
    WHEN (NEW.status IN ('indexed', 'failed', 'quarantined')
          AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.version IS DISTINCT FROM NEW.version))
    EXECUTE FUNCTION ingestq_document_webhooks();
