"""The rate limiter's pure `reserve` arithmetic (tables) and the in-process limiter on a manual clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingestq.clock import ManualClock
from ingestq.pipeline.embed.ratelimit import (
    BucketRateLimiter,
    BucketState,
    InProcessRateLimiter,
    MemoryBucketStore,
    RateLimits,
    reserve,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


R = 59 / 60  # refill per second at 60/min: the minute's allowance less the one-request bucket


@pytest.mark.parametrize(
    ("state", "limits", "now", "requests", "tokens", "left", "wait"),
    [
        # a fresh bucket is full: one second's worth, at least one request
        (None, RateLimits(60, None), 0, 1, 0, (0, 0), 0.0),
        (None, RateLimits(600, None), 0, 1, 0, (9, 0), 0.0),
        # empty request bucket: one request at 60/min waits a little over a second
        (BucketState(0, 0, at(0)), RateLimits(60, None), 0, 1, 0, (-1, 0), 1 / R),
        # half a second later part of a request has come back
        (BucketState(0, 0, at(0)), RateLimits(60, None), 0.5, 1, 0, (-1 + 0.5 * R, 0), (1 - 0.5 * R) / R),
        # refill stops at the bucket's size, and a level above it (an older, larger bucket) is cut to it
        (BucketState(0.5, 0, at(0)), RateLimits(60, None), 3600, 1, 0, (0, 0), 0.0),
        (BucketState(59, 0, at(0)), RateLimits(60, None), 0, 1, 0, (0, 0), 0.0),
        # tokens are the tighter limit: 1000 tokens at 6000/min, bucket at 40 -> 960 short
        (BucketState(1, 40, at(0)), RateLimits(120, 6000), 0, 1, 1000, (0, -960), 960 / (5900 / 60)),
        # one call larger than a minute's allowance is delayed, not refused
        (
            None,
            RateLimits(None, 1000),
            0,
            1,
            3000,
            (0, 1000 / 60 - 3000),
            (3000 - 1000 / 60) / (1000 * R / 60),
        ),
        # a clock that went backwards counts as no time passing
        (BucketState(0, 0, at(10)), RateLimits(60, None), 5, 1, 0, (-1, 0), 1 / R),
        # no limits: nothing to wait for
        (None, RateLimits(), 0, 5, 5000, (-5, -5000), 0.0),
    ],
)
def test_reserve(
    state: BucketState | None,
    limits: RateLimits,
    now: float,
    requests: int,
    tokens: int,
    left: tuple[float, float],
    wait: float,
) -> None:
    new, seconds = reserve(state, limits, at(now), requests, tokens)
    if limits.requests_per_minute is not None:
        assert new.requests == pytest.approx(left[0])
    if limits.tokens_per_minute is not None:
        assert new.tokens == pytest.approx(left[1])
    assert seconds == pytest.approx(wait)


async def test_limiter_spreads_a_burst_over_time() -> None:
    clock = ManualClock(T0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    limiter = BucketRateLimiter(MemoryBucketStore(clock), "k", RateLimits(tokens_per_minute=600), sleep)
    for _ in range(3):
        await limiter.acquire(tokens=300)  # 900 tokens against 600/min: 10 in the bucket, 590/min refill
    assert sleeps == pytest.approx([290 / 590 * 60, 590 / 590 * 60, 890 / 590 * 60])


@pytest.mark.parametrize(("limit", "callers"), [(60, 1), (600, 3), (240, 8), (5, 2)])
def test_no_minute_ever_sees_more_than_the_limit(limit: float, callers: int) -> None:
    """Callers (workers) reserve at random moments through one shared bucket and send when their wait is
    over; count the sends in every 60 s window. A bucket holding a whole minute's worth let a fresh
    client send up to twice the limit in its first minute."""
    rng = random.Random(limit * 100 + callers)
    limits = RateLimits(requests_per_minute=limit)
    state: BucketState | None = None
    free_at = [0.0] * callers  # each caller asks again once its previous request went out
    sends: list[float] = []
    while len(sends) < limit * 5:
        caller = min(range(callers), key=lambda c: free_at[c])
        now = free_at[caller] + rng.uniform(0, 0.05)
        state, wait = reserve(state, limits, at(now), 1, 0)
        sends.append(now + wait)
        free_at[caller] = now + wait
    sends.sort()
    busiest = max(sum(1 for s in sends if t <= s < t + 60) for t in sends)
    assert busiest <= limit
    assert busiest >= limit * 0.95  # and the limit is used, not left idle


async def test_keys_are_independent() -> None:
    store = MemoryBucketStore(ManualClock(T0))
    limits = RateLimits(requests_per_minute=60)
    assert await store.reserve("a", limits, 1, 0) == 0.0
    assert await store.reserve("b", limits, 1, 0) == 0.0
    assert await store.reserve("a", limits, 1, 0) == pytest.approx(1 / R)


async def test_unlimited_limiter_never_waits() -> None:
    await InProcessRateLimiter("k", RateLimits()).acquire(requests=10**6, tokens=10**9)
