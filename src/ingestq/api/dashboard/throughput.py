"""The overview's throughput: jobs finished per minute over the last hour, succeeded vs failed, as
server-rendered SVG geometry (no chart library, no script; the CSP forbids inline script and style, so
the bars are <rect> elements whose sizes are attributes and whose colours come from dashboard.css).

The counts come from one query over a range of the finished-by-age index (`job_finished_buckets`),
so the cost follows the jobs counted, not the history kept. The whole hour is counted once per process;
after that only the minutes that may still change are (the last SETTLE_MINUTES and the minute under
way), and the older minutes' counts are kept: a job is stamped with the minute it finished in, so a
minute that ended more than SETTLE_MINUTES ago gets no more of them (the margin covers a commit that
lands after its minute ended, and workers whose clocks differ by less than that). With a million jobs
finished in the hour, counting it all takes about 50 ms on SQLite and 330 ms on PostgreSQL; counting
the last three minutes, a twentieth of that. A purge of finished jobs does not lower the bars of
minutes counted already: the chart says what finished when, not what is still kept.

Requests that arrive while the chart is computed share that answer, and an answer is reused for ten
times what it cost to compute, at most CACHE_SECONDS (the first count of the hour, or a burst of jobs in
the open minutes): the chart then costs at most about a tenth of the time, however many ask. A cheap
chart (the usual case) is in effect never reused, so the page stays exact where it costs nothing. (A
fixed age would leave a page that refreshes on job events showing the chart from before the last
event.) A chart that cost BEHIND_COST or more is recomputed behind the page rather than in front of it:
the request gets the last chart at once and one background computation brings the next, so an
expensive chart (a million jobs in the open minutes: 330 ms on PostgreSQL) never holds up a page after
the first, and lags by at most one computation."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingestq.client.client import Client
from ingestq.model.job import JobState

log = logging.getLogger(__name__)

WINDOW_MINUTES = 60
BUCKET_SECONDS = 60.0
CHART_HEIGHT = 100.0  # viewBox units; the page scales the SVG to its width
BAR_PITCH = 10.0  # one bar per minute: 8 units wide, 2 apart
BAR_WIDTH = 8.0
SETTLE_MINUTES = 2  # a minute that ended this long ago is counted once and kept
CACHE_SECONDS = 5.0  # the longest an answer is reused
REUSE_FACTOR = 10.0  # an answer is reused for this many times what it cost
BEHIND_COST = 0.05  # seconds: a chart that cost this much is recomputed in the background


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
    settled: dict[datetime, tuple[int, int]] = field(default_factory=dict)
    """Minutes (by their start) that ended more than SETTLE_MINUTES ago: (succeeded, failed)."""
    behind: asyncio.Task[None] | None = None  # the background computation, while it runs


_memos: weakref.WeakKeyDictionary[object, _Memo] = weakref.WeakKeyDictionary()


async def throughput(client: Client) -> Throughput:
    now = client.clock.now()
    # buckets end at the next whole minute, so the newest bar is the minute under way
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = end - timedelta(minutes=WINDOW_MINUTES)
    memo = _memos.setdefault(client.store, _Memo())
    last = memo.chart
    if last is not None and memo.cost >= BEHIND_COST:
        if not _fresh(memo, since) and (memo.behind is None or memo.behind.done()):
            memo.behind = asyncio.create_task(_behind(client, since, now, memo))
        return last
    async with memo.lock:  # one computation at a time; those waiting take its answer
        if memo.chart is not None and _fresh(memo, since):
            return memo.chart
        return await _update(client, since, now, memo)


def _fresh(memo: _Memo, since: datetime) -> bool:
    return memo.since == since and time.monotonic() - memo.at < min(CACHE_SECONDS, REUSE_FACTOR * memo.cost)


async def _update(client: Client, since: datetime, now: datetime, memo: _Memo) -> Throughput:
    started = time.monotonic()
    chart = await _compute(client, since, now, memo)
    memo.at = time.monotonic()
    memo.since, memo.cost, memo.chart = since, memo.at - started, chart
    return chart


async def _behind(client: Client, since: datetime, now: datetime, memo: _Memo) -> None:
    try:
        async with memo.lock:
            await _update(client, since, now, memo)
    except Exception as exc:  # the page keeps the last chart; the next request tries again
        log.warning("throughput chart: %s", exc)


async def _compute(client: Client, since: datetime, now: datetime, memo: _Memo) -> Throughput:
    minute = timedelta(seconds=BUCKET_SECONDS)
    starts = [since + i * minute for i in range(WINDOW_MINUTES)]
    if memo.since is not None and since < memo.since:
        memo.settled.clear()  # the clock went back: what was settled may not be
    for old in [m for m in memo.settled if m < since]:
        del memo.settled[old]
    # count from the first minute not kept: the whole hour the first time, the open minutes after that
    first = next((i for i, m in enumerate(starts) if m not in memo.settled), WINDOW_MINUTES)
    counted: dict[int, list[int]] = {}
    if first < WINDOW_MINUTES:
        for bucket in await client.store.job_finished_buckets(starts[first], BUCKET_SECONDS):
            row = counted.setdefault(first + bucket.index, [0, 0])
            row[0 if bucket.state is JobState.SUCCEEDED else 1] += bucket.count
    settle_before = now - SETTLE_MINUTES * minute
    counts: dict[tuple[int, JobState], int] = {}
    for i, start in enumerate(starts):
        if i < first:
            ok, bad = memo.settled[start]
        else:
            ok, bad = counted.pop(i, (0, 0))
            if start + minute <= settle_before:
                memo.settled[start] = (ok, bad)
        counts[(i, JobState.SUCCEEDED)], counts[(i, JobState.FAILED)] = ok, bad
    for index, (ok, bad) in counted.items():  # stamped past the window's end: chart() clamps them
        counts[(index, JobState.SUCCEEDED)], counts[(index, JobState.FAILED)] = ok, bad
    return chart(counts, since)
