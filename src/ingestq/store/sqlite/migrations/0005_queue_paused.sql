-- A paused queue keeps accepting jobs but no worker claims them: its workers leave it out of their
-- claims from their next heartbeat on (within lease/3). NULL: not paused; otherwise when it was paused.

ALTER TABLE ingestq_queues ADD COLUMN paused_at REAL;
