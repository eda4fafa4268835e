-- Webhooks (docs/webhooks.md): the callback URLs, and a transactional outbox. A delivery is a row of
-- ingestq_webhook_deliveries plus a job of kind `ingestq.webhook`, and both are inserted by triggers in
-- the very transaction that finishes a job or settles a document: whichever statement does it (a worker's
-- outcome, the rescuer, a person's cancel, raw SQL), a committed outcome has its deliveries enqueued, and
-- a process that dies before the commit leaves neither. Applies after 6.

-- A collection's endpoints: every document of the collection that becomes indexed, failed or
-- quarantined is announced to each of them. `queue` and `max_attempts` are the delivery jobs' (from the
-- settings of whoever registered the URL).
CREATE TABLE ingestq_webhook_endpoints (
    collection   TEXT NOT NULL,
    url          TEXT NOT NULL,
    queue        TEXT NOT NULL,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    created_at   REAL NOT NULL,
    PRIMARY KEY (collection, url)
) WITHOUT ROWID;

-- One request's callbacks (POST /v1/jobs): announced once, when that job ends.
CREATE TABLE ingestq_job_callbacks (
    job_id       INTEGER NOT NULL,
    url          TEXT NOT NULL,
    queue        TEXT NOT NULL,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    PRIMARY KEY (job_id, url)
) WITHOUT ROWID;

-- One request's callbacks for a document (POST /v1/documents): announced once, the next time the
-- document is indexed, failed or quarantined, then removed. Registered before its job is enqueued, so a
-- fast worker cannot settle the document before they exist.
CREATE TABLE ingestq_document_callbacks (
    collection   TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    url          TEXT NOT NULL,
    queue        TEXT NOT NULL,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    PRIMARY KEY (collection, document_id, url)
) WITHOUT ROWID;

-- What is sent, fixed when it is enqueued (the same body, so the same signature input, on every attempt
-- and redelivery) and what became of it. `message_id` is the `webhook-id` header: stable across retries
-- and redeliveries, so a receiver can drop duplicates. `job_id`: the delivery's latest job.
CREATE TABLE ingestq_webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    max_attempts     INTEGER NOT NULL,
    subject_job_id   INTEGER,
    collection       TEXT,
    document_id      TEXT,
    job_id           INTEGER,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    last_attempt_at  REAL,
    delivered_at     REAL
);
CREATE INDEX ingestq_webhook_deliveries_status ON ingestq_webhook_deliveries (status, id);

-- One row per attempt (the handler records it, before it raises for a retry).
CREATE TABLE ingestq_webhook_attempts (
    delivery_id  INTEGER NOT NULL REFERENCES ingestq_webhook_deliveries (id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    job_id       INTEGER NOT NULL,
    at           REAL NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  REAL NOT NULL,
    PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;

-- The outbox: a delivery row enqueues its job in the same transaction (and the job id is written back).
CREATE TRIGGER ingestq_webhook_deliveries_enqueue AFTER INSERT ON ingestq_webhook_deliveries
BEGIN
    INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, created_at)
    VALUES (NEW.queue, 'ingestq.webhook', json_object('delivery_id', NEW.id), 0, NEW.created_at,
            NEW.max_attempts, NEW.created_at);
    UPDATE ingestq_webhook_deliveries SET job_id = last_insert_rowid() WHERE id = NEW.id;
END;

-- A job with callbacks ends (succeeded, failed or cancelled, by whatever statement). The callbacks
-- lookup sits in the WHEN clause: for the many jobs without callbacks the trigger's program is never
-- entered (an index probe on an empty table, instead of a sub-program per finished job).
CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF state ON ingestq_jobs
WHEN NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state <> NEW.state
     AND EXISTS (SELECT 1 FROM ingestq_job_callbacks WHERE job_id = NEW.id)
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

-- A document becomes indexed, failed or quarantined: its collection's endpoints, and its one-shot
-- request callbacks (then removed).
CREATE TRIGGER ingestq_documents_webhooks AFTER UPDATE OF status, version ON ingestq_documents
WHEN NEW.status IN ('indexed', 'failed', 'quarantined')
     AND (OLD.status <> NEW.status OR OLD.version <> NEW.version)
BEGIN
    INSERT INTO ingestq_webhook_deliveries (message_id, event, url, body, queue, max_attempts,
                                            collection, document_id, created_at)
    SELECT 'msg_' || lower(hex(randomblob(16))), 'document.' || NEW.status, t.url,
           json_object(
               'type', 'document.' || NEW.status,
               'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.updated_at, 'unixepoch'),
               'data', json_object(
                   'collection', NEW.collection, 'document_id', NEW.id, 'status', NEW.status,
                   'version', NEW.version, 'chunk_count', NEW.chunk_count, 'title', NEW.title,
                   'error', NEW.error)),
           t.queue, t.max_attempts, NEW.collection, NEW.id, NEW.updated_at
    FROM (SELECT url, queue, max_attempts FROM ingestq_webhook_endpoints WHERE collection = NEW.collection
          UNION
          SELECT url, queue, max_attempts FROM ingestq_document_callbacks
          WHERE collection = NEW.collection AND document_id = NEW.id) t
    ORDER BY t.url;
    DELETE FROM ingestq_document_callbacks WHERE collection = NEW.collection AND document_id = NEW.id;
END;
