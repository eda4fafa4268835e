"""Typed embedding failures, so the job layer knows whether running the job again can help.

They derive from the queue's `PermanentError` / `RetryableError` (leaf module `ingestq.errors`), which
the retry policy already understands, and from `EmbedError` so callers can catch the stage as a whole.
"""

from __future__ import annotations

from ingestq.errors import ConfigError, IngestqError, PermanentError, RetryableError


class EmbedError(IngestqError):
    """Any failure of the embedding stage."""


class EmbedderConfigError(EmbedError, ConfigError):
    """The embedder cannot be built: missing model folder, bad URL, unknown kind."""


class EmbedderUnavailable(EmbedError, RetryableError):
    """The local model cannot be loaded on this machine (a broken torch or sentence-transformers install,
    unreadable weights, out of memory): not the fault of the texts. The message is `<cause>; <fix>`."""


class EmbedRequestRejected(EmbedError, PermanentError):
    """The service refused the request itself (4xx other than 408/429): retrying sends the same bytes."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EmbedServiceUnavailable(EmbedError, RetryableError):
    """Rate limited, overloaded, 5xx, timed out or unreachable, still so after the in-call retries.

    `retry_after` carries the server's own hint when it gave one, so a job that fails with it is
    rescheduled no sooner. The ingestion runtime does not let it spend a document's attempt: it gives
    the job back and pauses ingestion until the service answers (`ingestq.errors.Unavailable`).
    """


class EmbedResponseInvalid(EmbedError, RetryableError):
    """The service answered 200 with something that is not the embeddings asked for."""
