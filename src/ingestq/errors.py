"""Exception hierarchy.

Every error a user can cause derives from `IngestqError` and carries a message that reads well on one
line: the CLI prints `str(error)` and exits non-zero, it never shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class IngestqError(Exception):
    """Base of every error ingestq raises on purpose."""


class ConfigError(IngestqError):
    """A setting is wrong (bad database URL, unknown backend, bad value)."""


class StoreError(IngestqError):
    """The database cannot be used (unreachable, not a database, locked for too long)."""


class WriterBusy(StoreError):
    """Another connection held the SQLite write lock past the busy timeout."""


class SchemaError(StoreError):
    """The schema is missing, or newer than this code understands."""


class FeatureUnavailable(SchemaError):
    """The server lacks an optional extension (pgvector): the queue works, document features do not."""


class JobNotFound(IngestqError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class DeliveryNotFound(IngestqError):
    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"webhook delivery {delivery_id} not found")
        self.delivery_id = delivery_id


class InvalidJobState(IngestqError):
    """An operation does not apply to a job in its current state (e.g. retrying a running job)."""


class UnknownJobKind(IngestqError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown job kind {kind!r} (is the module that defines it passed with --app?)")
        self.kind = kind


class InvalidPayload(IngestqError):
    """A job payload is not a JSON object (a dict with string keys and JSON-encodable values)."""


class QueueFull(IngestqError):
    """Backpressure: the queue already holds its maximum number of unfinished jobs."""

    def __init__(self, queue: str, max_depth: int, retry_after: float = 1.0) -> None:
        super().__init__(f"queue {queue!r} is full ({max_depth} unfinished jobs); retry later")
        self.queue = queue
        self.max_depth = max_depth
        self.retry_after = retry_after


# --- raised by job handlers to steer the retry policy ---------------------------------------------


class PermanentError(IngestqError):
    """The job cannot succeed by being run again (bad input): fail it at once, no retry."""


class RetryableError(IngestqError):
    """A transient failure; `retry_after` (seconds) overrides the backoff when given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(IngestqError):
    """A resource this worker needs for the job is not available on this machine (a parser process that
    cannot start, an embedder that does not answer): not the job's fault. The worker gives the job back
    without spending its attempt and stops claiming its kind until `recheck()` succeeds.

    `reason` is one line, `<cause>; <fix>`; `recheck` raises (normally `Unavailable` again) while the
    resource is still missing and returns once it is back."""

    def __init__(self, reason: str, recheck: Callable[[], Awaitable[None]]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.recheck = recheck


class JobCancelled(IngestqError):
    """Raised inside a handler (by `JobContext.raise_if_cancelled`) when cancellation was requested."""
