"""From the samples to the figures and checks: least-squares memory slopes after the warm-up, database
size early against late, p99 pickup in the first window against the last."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.soak.dbsize import DbSize
from bench.soak.load import Pickup, Tally

WARMUP = 300.0  # seconds left out of the slopes (model loading, pools, caches filling)
WINDOW = 600.0  # the "first ten minutes" and "last ten minutes" of the pickup comparison


@dataclass
class Sample:
    t: float  # run clock, seconds
    rss: dict[str, float | None]  # process name ("api", "w0", "w1") → MB
    parsers: dict[str, float]  # worker name → MB of its child processes (parsers)
    db: DbSize
    backlog: int  # queued + running jobs
    load1: float


@dataclass
class Figures:
    minutes: float
    slopes: dict[str, float | None]  # MB/hour
    db_early: float  # MB, peak over the early window (after warm-up)
    db_late: float  # MB, peak over the last window
    db_slope: float | None  # MB/hour after warm-up
    wal_max: float
    p99_first: float | None
    p99_last: float | None
    by_kind: dict[str, tuple[float | None, float | None]]  # kind → (p99 first window, p99 last window)
    answer_p99_first: float | None  # POST /v1/jobs and /v1/documents: seconds to the answer
    answer_p99_last: float | None
    lost: list[str]
    checks: dict[str, bool | None] = field(default_factory=dict)  # None: not applicable (run too short)

    @property
    def ok(self) -> bool:
        return all(v is not False for v in self.checks.values())


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) in MB per hour; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx * 3600


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def windows(duration: float) -> tuple[float, float]:
    """(warm-up, comparison window): 5 and 10 minutes, scaled down for short runs."""
    return min(WARMUP, duration / 4), min(WINDOW, duration / 3)


def analyse(
    samples: list[Sample],
    pickups: list[Pickup],
    tally: Tally,
    lost: list[str],
    duration: float,
    *,
    max_slope: float,
    max_growth: float,
    exits: Mapping[str, int | None],
) -> Figures:
    warm, window = windows(duration)
    steady = [s for s in samples if s.t >= warm]
    names = list(samples[0].rss) if samples else []
    slopes = {n: slope([(s.t, v) for s in steady if (v := s.rss.get(n)) is not None]) for n in names}
    early = [s.db.total_mb for s in steady if s.t < warm + window] or [0.0]
    late = [s.db.total_mb for s in steady if s.t >= duration - window] or [0.0]
    fig = Figures(
        minutes=duration / 60,
        slopes=slopes,
        db_early=max(early),
        db_late=max(late),
        db_slope=slope([(s.t, s.db.total_mb) for s in steady]),
        wal_max=max((s.db.wal_mb for s in samples), default=0.0),
        p99_first=p99([p.seconds for p in pickups if p.t < window]),
        p99_last=p99([p.seconds for p in pickups if p.t >= duration - window]),
        by_kind={
            kind: (
                p99([p.seconds for p in pickups if p.kind == kind and p.t < window]),
                p99([p.seconds for p in pickups if p.kind == kind and p.t >= duration - window]),
            )
            for kind in sorted({p.kind for p in pickups})
        },
        answer_p99_first=p99([s for t, s in tally.answers if t < window]),
        answer_p99_last=p99([s for t, s in tally.answers if t >= duration - window]),
        lost=lost,
    )
    sent = tally.enqueued
    fig.checks["nothing lost (every job succeeded, every document indexed)"] = (
        not lost and not tally.problems and sent == tally.succeeded and tally.indexed == sent["ingest"]
    )
    # uvicorn re-raises the SIGTERM it handled once its shutdown is complete: -15 is its clean exit
    clean = {name: (0, -15) if name == "api" else (0,) for name in exits}
    fig.checks["every process ran to the end and exited cleanly"] = all(
        code in clean[name] for name, code in exits.items()
    )
    # The slope of a 2-minute run says nothing: the memory check needs 15 minutes after the warm-up.
    long_enough = duration - warm >= 900
    fig.checks[f"flat memory (each slope < {max_slope:g} MB/h)"] = (
        all(v is not None and v < max_slope for v in slopes.values()) if long_enough else None
    )
    # Retention prunes every 5 minutes: compare peaks over whole windows (two prune cycles each).
    fig.checks[f"no database growth (late peak ≤ early peak × {1 + max_growth:g} + 1 MB)"] = (
        fig.db_late <= fig.db_early * (1 + max_growth) + 1 if duration >= 1200 else None
    )
    fig.checks["p99 pickup last/first ≤ 1.5"] = (
        fig.p99_first is not None
        and fig.p99_last is not None
        and fig.p99_last <= 1.5 * max(fig.p99_first, 0.001)
    )
    return fig


def every(samples: list[Sample], pickups: list[Pickup], backend: str, step: float = 300.0) -> list[list[str]]:
    """One row per `step` seconds: the sample nearest each mark, p99 pickup of the jobs enqueued in the
    step before it."""
    if not samples:
        return []
    rows = []
    end = samples[-1].t
    marks = [step * i for i in range(1, int(end // step) + 1)] or [end]
    for mark in marks:
        s = min(samples, key=lambda x: abs(x.t - mark))
        w = [name for name in s.rss if name != "api"]
        p = p99([x.seconds for x in pickups if mark - step <= x.t < mark])
        db = (
            f"{s.db.total_mb:.1f} (WAL {s.db.wal_mb:.1f}, free {s.db.free_mb:.1f})"
            if backend == "sqlite"
            else f"{s.db.total_mb:.1f} ({s.db.dead} dead tuples)"
        )
        rows.append(
            [
                f"{s.t / 60:.0f}",
                _mb(s.rss.get("api")),
                " / ".join(f"{_mb(s.rss.get(n))} (+{s.parsers.get(n, 0):.0f})" for n in w),
                db,
                str(s.db.rows.get("jobs", "")),
                str(s.db.rows.get("documents", "")),
                str(s.db.rows.get("embed_cache", "")),
                str(s.backlog),
                f"{p:.3f}" if p is not None else "",
                f"{s.load1:.1f}",
            ]
        )
    return rows


def _mb(v: float | None) -> str:
    return f"{v:.0f}" if v is not None else "gone"
