"""Requests-per-minute and tokens-per-minute limits for remote embedders.

The arithmetic is one pure function, `reserve`: a token bucket per dimension (requests, tokens) that
holds about one second's worth (`capacity`) and refills continuously at (limit - capacity)/60 per second, so
that no 60-second window ever sees more than the limit: a bucket holding one minute's worth let a fresh
or idle client send the full minute at once and then another minute's refill within the same 60 s (up to
twice the limit; the provider counts by the minute and answers 429). A caller takes what it needs at
once; the bucket may go negative, and the caller then sleeps until it would have been back at zero.
Taking first and sleeping after makes the state update a single read-modify-write, which is what lets
the shared implementation live in the database (one row per limiter key, updated in one transaction
by every worker, with the same function). `InProcessRateLimiter` keeps that state in memory for a
single process; the database-backed `BucketStore` is wired by the store layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingestq.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class RateLimits:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


@dataclass(frozen=True, slots=True)
class BucketState:
    """What is left in each bucket at `updated_at` (may be negative: reserved ahead)."""

    requests: float
    tokens: float
    updated_at: datetime


BURST_SECONDS = 1.0
"""The bucket holds this many seconds' worth of the limit: a short burst, paid for by a slightly slower
refill, so that burst + one minute's refill is exactly the limit."""


def capacity(per_minute: float | None) -> float:
    """One second's worth, and at least one request when the limit allows two a minute (so the first
    call of a fresh bucket goes at once); never more than half the limit, so the refill stays positive."""
    limit = per_minute or 0.0
    return max(limit * BURST_SECONDS / 60.0, min(1.0, limit / 2))


def rate(per_minute: float) -> float:
    """Refill per second: what is left of the minute's allowance once the burst is spent."""
    return (per_minute - capacity(per_minute)) / 60.0


def full_bucket(limits: RateLimits, now: datetime) -> BucketState:
    return BucketState(
        requests=capacity(limits.requests_per_minute),
        tokens=capacity(limits.tokens_per_minute),
        updated_at=now,
    )


def _refill(level: float, per_minute: float | None, elapsed: float) -> float:
    if per_minute is None:
        return 0.0
    return min(capacity(per_minute), level + elapsed * rate(per_minute))


def _wait(level: float, per_minute: float | None) -> float:
    if per_minute is None or level >= 0:
        return 0.0
    return -level / rate(per_minute)


def reserve(
    state: BucketState | None, limits: RateLimits, now: datetime, requests: int = 1, tokens: int = 0
) -> tuple[BucketState, float]:
    """Take `requests` and `tokens` from the buckets; return the new state and seconds to sleep first.

    A clock that went backwards counts as no time passing. A single call larger than the bucket (or a
    whole minute's allowance) is let through after the bucket has refilled enough, never refused.
    """
    if state is None:
        state = full_bucket(limits, now)
    elapsed = max(0.0, (now - state.updated_at).total_seconds())
    req = _refill(state.requests, limits.requests_per_minute, elapsed) - requests
    tok = _refill(state.tokens, limits.tokens_per_minute, elapsed) - tokens
    wait = max(_wait(req, limits.requests_per_minute), _wait(tok, limits.tokens_per_minute))
    return BucketState(requests=req, tokens=tok, updated_at=max(now, state.updated_at)), wait


class RateLimiter(Protocol):
    async def acquire(self, requests: int = 1, tokens: int = 0) -> None:
        """Return when a call of this size may go out (sleeping as long as the limits require)."""
        ...


class BucketStore(Protocol):
    """Where bucket state lives. The database implementation runs `reserve` inside one transaction
    on the row for `key` (SELECT ... FOR UPDATE on PostgreSQL, a write transaction on SQLite), so all
    workers draw from the same buckets."""

    async def reserve(self, key: str, limits: RateLimits, requests: int, tokens: int) -> float:
        """Apply `reserve` to the stored state for `key`; return the seconds to sleep."""
        ...


class MemoryBucketStore:
    """Bucket state in this process's memory."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._states: dict[str, BucketState] = {}

    async def reserve(self, key: str, limits: RateLimits, requests: int, tokens: int) -> float:
        # no await between read and write: atomic with respect to other tasks of this loop
        state, wait = reserve(self._states.get(key), limits, self._clock.now(), requests, tokens)
        self._states[key] = state
        return wait


class BucketRateLimiter:
    """A `RateLimiter` over any `BucketStore` (memory here, the database when shared)."""

    def __init__(
        self,
        store: BucketStore,
        key: str,
        limits: RateLimits,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self.key = key
        self.limits = limits
        self._sleep = sleep

    async def acquire(self, requests: int = 1, tokens: int = 0) -> None:
        if self.limits.unlimited:
            return
        wait = await self._store.reserve(self.key, self.limits, requests, tokens)
        if wait > 0:
            await self._sleep(wait)


class InProcessRateLimiter(BucketRateLimiter):
    def __init__(self, key: str, limits: RateLimits, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(MemoryBucketStore(clock), key, limits)


class NoRateLimit:
    async def acquire(self, requests: int = 1, tokens: int = 0) -> None:
        return None
