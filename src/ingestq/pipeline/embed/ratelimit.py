"""Requests-per-minute and tokens-per-minute limits for remote embedders.

The arithmetic is one pure function, `reserve`: a token bucket per dimension (requests, tokens) that
refills continuously at limit/60 per second up to one minute's worth. A caller takes what it needs at
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


def full_bucket(limits: RateLimits, now: datetime) -> BucketState:
    return BucketState(
        requests=limits.requests_per_minute or 0.0, tokens=limits.tokens_per_minute or 0.0, updated_at=now
    )


def _refill(level: float, per_minute: float | None, elapsed: float) -> float:
    if per_minute is None:
        return 0.0
    return min(per_minute, level + elapsed * per_minute / 60.0)


def _wait(level: float, per_minute: float | None) -> float:
    if per_minute is None or level >= 0:
        return 0.0
    return -level * 60.0 / per_minute


def reserve(
    state: BucketState | None, limits: RateLimits, now: datetime, requests: int = 1, tokens: int = 0
) -> tuple[BucketState, float]:
    """Take `requests` and `tokens` from the buckets; return the new state and seconds to sleep first.

    A clock that went backwards counts as no time passing. A single call larger than a whole minute's
    allowance is let through after the bucket has refilled enough, never refused outright.
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
