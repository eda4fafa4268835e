"""Retry policy: given a failed attempt, when (if ever) the job runs again.

A policy is a small pure object: it reads the job (attempt, max_attempts) and the error, and returns the
time of the next attempt, or None when the job must fail now. It never touches the store; `now` comes
from the caller so a table test needs no clock and no database.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from ingestq.errors import JobCancelled, PermanentError, RetryableError, UnknownJobKind
from ingestq.model.job import Job

MAX_ERROR_CHARS = 2000


class BadPayload(PermanentError):
    """The payload does not match the handler's parameters: running it again cannot help."""


class RetryPolicy(Protocol):
    def next_attempt(self, job: Job, error: BaseException, now: datetime) -> datetime | None:
        """When to run `job` again after `error` on its current attempt; None: fail it now."""
        ...


def is_permanent(error: BaseException) -> bool:
    """Errors that no amount of retrying can fix: bad input, a kind no worker knows, a cancelled job."""
    return isinstance(error, PermanentError | UnknownJobKind | JobCancelled)


@dataclass
class ExponentialBackoff:
    """Delay before attempt n+1 after attempt n failed (attempts count from 1):

        delay(n) = min(max, base * 2 ** (n - 1)) * uniform(1 - jitter, 1 + jitter), capped at max

    With the defaults (base 1 s, max 1 h, jitter 0.1) the schedule is about 1 s, 2 s, 4 s, 8 s, 16 s …
    reaching the one-hour cap after the 13th attempt. Jitter spreads retries of jobs that failed together
    (an outage) so they do not all come back in the same instant.

    No retry (None) when the error is permanent (`is_permanent`) or the job has used all its attempts.
    A `RetryableError(retry_after=S)` replaces the computed delay by exactly S seconds (no jitter, no cap:
    the handler knows better, e.g. an HTTP Retry-After), but never grants attempts beyond max_attempts.
    """

    base: float = 1.0
    max: float = 3600.0
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.base < 0 or self.max < 0:
            raise ValueError("backoff base and max must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempt: int) -> float:
        # Cap the exponent before computing: 2 ** 10_000 would overflow float arithmetic.
        raw = self.base * 2.0 ** min(max(attempt - 1, 0), 64)
        delay = min(self.max, raw)
        if self.jitter:
            delay *= self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.max, delay)

    def next_attempt(self, job: Job, error: BaseException, now: datetime) -> datetime | None:
        if is_permanent(error) or job.attempt >= job.max_attempts:
            return None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            return now + timedelta(seconds=max(0.0, error.retry_after))
        return now + timedelta(seconds=self.delay(job.attempt))


def error_message(error: BaseException) -> str:
    """One line `ExcType: message` for last_error and the history (no traceback, bounded length, no NUL:
    PostgreSQL text cannot hold one, and a message the store refuses would stall the completion)."""
    name = type(error).__name__
    if isinstance(error, TimeoutError | asyncio.TimeoutError) and not str(error):
        text = name
    else:
        detail = " ".join(str(error).replace("\x00", "\\x00").split())
        text = f"{name}: {detail}" if detail else name
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text
