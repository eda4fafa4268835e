"""The rate limiter's pure `reserve` arithmetic (tables) and the in-process limiter on a manual clock."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    ("state", "limits", "now", "requests", "tokens", "left", "wait"),
    [
        # a fresh bucket is full
        (None, RateLimits(60, None), 0, 1, 0, (59, 0), 0.0),
        # empty request bucket: one request at 60/min waits a second
        (BucketState(0, 0, at(0)), RateLimits(60, None), 0, 1, 0, (-1, 0), 1.0),
        # half a second later half a request has come back
        (BucketState(0, 0, at(0)), RateLimits(60, None), 0.5, 1, 0, (-0.5, 0), 0.5),
        # refill stops at one minute's worth
        (BucketState(10, 0, at(0)), RateLimits(60, None), 3600, 1, 0, (59, 0), 0.0),
        # tokens are the tighter limit: 1000 tokens at 6000/min, bucket at 400 -> 600 short -> 6 s
        (BucketState(100, 400, at(0)), RateLimits(100, 6000), 0, 1, 1000, (99, -600), 6.0),
        # one call larger than a minute's allowance is delayed, not refused
        (None, RateLimits(None, 1000), 0, 1, 3000, (0, -2000), 120.0),
        # a clock that went backwards counts as no time passing
        (BucketState(0, 0, at(10)), RateLimits(60, None), 5, 1, 0, (-1, 0), 1.0),
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
        await limiter.acquire(tokens=300)  # 900 tokens against 600/min
    assert sleeps == pytest.approx([30.0])
    clock.advance(60)
    await limiter.acquire(tokens=300)
    assert sleeps == pytest.approx([30.0])  # refilled: no new wait


async def test_keys_are_independent() -> None:
    store = MemoryBucketStore(ManualClock(T0))
    limits = RateLimits(requests_per_minute=1)
    assert await store.reserve("a", limits, 1, 0) == 0.0
    assert await store.reserve("b", limits, 1, 0) == 0.0
    assert await store.reserve("a", limits, 1, 0) == pytest.approx(60.0)


async def test_unlimited_limiter_never_waits() -> None:
    await InProcessRateLimiter("k", RateLimits()).acquire(requests=10**6, tokens=10**9)
