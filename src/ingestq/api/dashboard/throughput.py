"""The overview's throughput: jobs finished per minute over the last hour, succeeded vs failed, as
server-rendered SVG geometry (no chart library, no script; the CSP forbids inline script and style, so
the bars are <rect> elements whose sizes are attributes and whose colours come from dashboard.css).

One query reads only the window (`job_finished_buckets`, a range of the finished-by-age index), so the
cost follows the last hour's jobs, not the history kept. That is still every job of the hour: with a
million of them it takes about 50 ms on SQLite and 330 ms on PostgreSQL, and an overview page asked ten
times a second (tabs refreshing, a wall screen) made every request wait for the previous ones' counts
(p50 8–10 s in `python -m bench.service --sections flat`). So requests that arrive while the chart is
computed share that answer, and an answer is reused for ten times what it cost to compute, at most
CACHE_SECONDS: the chart then costs at most about a tenth of the time, however many ask. A cheap chart
(a small or old history: a millisecond) is in effect never reused, so the page stays exact where it
costs nothing; an expensive one lags by at most CACHE_SECONDS, and a bar is a minute. (A fixed age
would leave a page that refreshes on job events showing the chart from before the last event.)"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingestq.client.client import Client
from ingestq.model.job import JobState

WINDOW_MINUTES = 60
BUCKET_SECONDS = 60.0
CHART_HEIGHT = 100.0  # viewBox units; the page scales the SVG to its width
BAR_PITCH = 10.0  # one bar per minute: 8 units wide, 2 apart
BAR_WIDTH = 8.0
CACHE_SECONDS = 5.0  # the longest an answer is reused
REUSE_FACTOR = 10.0  # an answer is reused for this many times what it cost


@dataclass(frozen=True)
class Bar:
    minutes_ago: int  # 0: the minute under way
    succeeded: int
    failed: int
    x: float
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float

    @property
    def label(self) -> str:
        when = "this minute" if self.minutes_ago == 0 else f"{self.minutes_ago} min ago"
        return f"{when}: {self.succeeded} succeeded, {self.failed} failed"


@dataclass(frozen=True)
class Throughput:
    bars: list[Bar]
    succeeded: int
    failed: int
    peak: int  # the busiest minute's jobs: the chart's full height
    since: datetime

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def per_minute(self) -> float:
        return self.finished / WINDOW_MINUTES

    @property
    def width(self) -> float:
        return WINDOW_MINUTES * BAR_PITCH

    @property
    def height(self) -> float:
        return CHART_HEIGHT


def chart(counts: dict[tuple[int, JobState], int], since: datetime) -> Throughput:
    """Bars for bucket indexes 0..WINDOW_MINUTES-1 (oldest first); a finish stamped in the future by a
    skewed clock lands in the newest bar rather than vanishing."""
    ok = [0] * WINDOW_MINUTES
    bad = [0] * WINDOW_MINUTES
    for (index, state), n in counts.items():
        slot = min(max(index, 0), WINDOW_MINUTES - 1)
        (ok if state is JobState.SUCCEEDED else bad)[slot] += n
    peak = max((a + b for a, b in zip(ok, bad, strict=True)), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars = []
    for i, (a, b) in enumerate(zip(ok, bad, strict=True)):
        ok_h, bad_h = a * scale, b * scale
        # a minute with any job shows at least a sliver, so one failure among thousands is visible
        ok_h = max(ok_h, 1.5) if a else 0.0
        bad_h = max(bad_h, 1.5) if b else 0.0
        bars.append(
            Bar(
                minutes_ago=WINDOW_MINUTES - 1 - i,
                succeeded=a,
                failed=b,
                x=i * BAR_PITCH + (BAR_PITCH - BAR_WIDTH) / 2,
                ok_y=round(CHART_HEIGHT - ok_h, 2),
                ok_height=round(ok_h, 2),
                bad_y=round(CHART_HEIGHT - ok_h - bad_h, 2),
                bad_height=round(bad_h, 2),
            )
        )
    return Throughput(bars, sum(ok), sum(bad), peak, since)


@dataclass
class _Memo:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    since: datetime | None = None
    at: float = 0.0
    cost: float = 0.0
    chart: Throughput | None = None


_memos: weakref.WeakKeyDictionary[object, _Memo] = weakref.WeakKeyDictionary()


async def throughput(client: Client) -> Throughput:
    now = client.clock.now()
    # buckets end at the next whole minute, so the newest bar is the minute under way
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = end - timedelta(minutes=WINDOW_MINUTES)
    memo = _memos.setdefault(client.store, _Memo())
    async with memo.lock:  # one computation at a time; those waiting take its answer
        fresh = time.monotonic() - memo.at < min(CACHE_SECONDS, REUSE_FACTOR * memo.cost)
        if memo.chart is not None and memo.since == since and fresh:
            return memo.chart
        started = time.monotonic()
        chart = await _compute(client, since)
        memo.at = time.monotonic()
        memo.since, memo.cost, memo.chart = since, memo.at - started, chart
        return chart


async def _compute(client: Client, since: datetime) -> Throughput:
    found = await client.store.job_finished_buckets(since, BUCKET_SECONDS)
    counts: dict[tuple[int, JobState], int] = {}
    for bucket in found:
        key = (bucket.index, bucket.state)
        counts[key] = counts.get(key, 0) + bucket.count
    return chart(counts, since)
