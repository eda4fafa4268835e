"""The overview's throughput: jobs finished per minute over the last hour, succeeded vs failed, as
server-rendered SVG geometry (no chart library, no script; the CSP forbids inline script and style, so
the bars are <rect> elements whose sizes are attributes and whose colours come from dashboard.css).

One query reads only the window (`job_finished_buckets`, a range of the finished-by-age index), so the
cost follows the last hour's jobs, not the history kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestq.client.client import Client
from ingestq.model.job import JobState

WINDOW_MINUTES = 60
BUCKET_SECONDS = 60.0
CHART_HEIGHT = 100.0  # viewBox units; the page scales the SVG to its width
BAR_PITCH = 10.0  # one bar per minute: 8 units wide, 2 apart
BAR_WIDTH = 8.0


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


async def throughput(client: Client) -> Throughput:
    now = client.clock.now()
    # buckets end at the next whole minute, so the newest bar is the minute under way
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = end - timedelta(minutes=WINDOW_MINUTES)
    found = await client.store.job_finished_buckets(since, BUCKET_SECONDS)
    counts: dict[tuple[int, JobState], int] = {}
    for bucket in found:
        key = (bucket.index, bucket.state)
        counts[key] = counts.get(key, 0) + bucket.count
    return chart(counts, since)
