"""The overview's throughput chart: requests that arrive while it is computed share the answer, and an
expensive answer is reused for ten times its cost (at most CACHE_SECONDS). With a million jobs finished
in the hour each computation costs 50–330 ms, and ten overview requests a second queued them up to
8–10 s each (bench.service flat). A cheap chart is recomputed every time: the browser test of the
overview saw a chart cached at a fixed age stay at its value from before the last job event."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestq.api.dashboard import throughput as tp
from ingestq.client.client import Client
from ingestq.clock import ManualClock
from ingestq.model.job import ClaimRequest, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.store.sqlite.store import SqliteStore


@dataclass
class Counts:
    """Every job_finished_buckets query that reached the store, as (since, width); each waits `delay`
    seconds first (a slow count: requests arrive while it runs)."""

    asked: list[tuple[datetime, float]] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    found = Counts()
    original = SqliteStore.job_finished_buckets

    async def recorded(self: SqliteStore, since: datetime, width: float) -> Any:
        found.asked.append((since, width))
        if found.delay:
            await asyncio.sleep(found.delay)
        return await original(self, since, width)

    monkeypatch.setattr(SqliteStore, "job_finished_buckets", recorded)
    return found


async def test_concurrent_and_repeated_requests_share_one_computation(tmp_path: Path, counts: Counts) -> None:
    counts.delay = 0.05
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await client.enqueue("k")
        charts = await asyncio.gather(*(tp.throughput(client) for _ in range(20)))
        assert len(counts.asked) == 1
        assert all(c is charts[0] for c in charts)
        await tp.throughput(client)  # within CACHE_SECONDS: the same answer, no query
        assert len(counts.asked) == 1


async def test_past_its_age_the_chart_is_computed_again(
    tmp_path: Path, counts: Counts, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts.delay = 0.05
    monkeypatch.setattr(tp, "CACHE_SECONDS", 0.0)
    monkeypatch.setattr(tp, "BEHIND_COST", 10.0)  # computed in front of the page, as a cheap chart is
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await tp.throughput(client)
        await tp.throughput(client)
        assert len(counts.asked) == 2


async def test_a_cheap_chart_is_computed_for_each_request(tmp_path: Path, counts: Counts) -> None:
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await tp.throughput(client)
        cost = tp._memos[client.store].cost
        assert cost < 0.1  # an empty table: about a millisecond
        await asyncio.sleep(tp.REUSE_FACTOR * cost + 0.05)
        await tp.throughput(client)
        assert len(counts.asked) == 2


async def _finish(client: Client, outcome: OutcomeKind, when: datetime, n: int) -> None:
    jobs = [client.new_job("ingestq.probe", {}, queue="q", run_at=when) for _ in range(n)]
    await client.store.job_insert_many(jobs, when)
    claimed = await client.store.job_claim(ClaimRequest("t", n, 60.0, ("q",)), when)
    await client.store.job_finish_many([Outcome(j.id, "t", j.attempt, outcome) for j in claimed], when)


def _minute(chart: tp.Throughput, minutes_ago: int) -> tuple[int, int]:
    (bar,) = [b for b in chart.bars if b.minutes_ago == minutes_ago]
    return bar.succeeded, bar.failed


async def test_minutes_that_ended_are_counted_once_and_kept(
    tmp_path: Path, counts: Counts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole hour is counted the first time; after that only the minutes that may still change:
    with a million jobs in the hour the full count was the overview's p99 (330 ms on PostgreSQL)."""
    monkeypatch.setattr(tp, "CACHE_SECONDS", 0.0)  # every call computes: what is counted is the point
    clock = ManualClock(datetime(2030, 1, 1, 12, 30, 20, tzinfo=UTC))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")
    async with Client.connect(settings, clock=clock) as client:
        now = clock.now()
        await _finish(client, OutcomeKind.SUCCEEDED, now - timedelta(minutes=20), 3)
        await _finish(client, OutcomeKind.FAILED, now - timedelta(minutes=20), 1)
        await _finish(client, OutcomeKind.SUCCEEDED, now, 2)

        first = await tp.throughput(client)
        asked = [since for since, _ in counts.asked]
        assert asked == [first.since]  # the whole hour
        assert (_minute(first, 20), _minute(first, 0)) == ((3, 1), (2, 0))

        clock.advance(50)  # 12:31:10; a job finishes in the minute under way
        await _finish(client, OutcomeKind.FAILED, clock.now(), 1)
        second = await tp.throughput(client)
        # from the first minute not settled: 12:28 (it ended at 12:29, less than 2 minutes before 12:31:10)
        assert counts.asked[1][0] == datetime(2030, 1, 1, 12, 28, tzinfo=UTC)
        assert (_minute(second, 21), _minute(second, 1), _minute(second, 0)) == ((3, 1), (2, 0), (0, 1))
        assert (second.succeeded, second.failed) == (5, 2)

        clock.advance(40 * 60)  # 13:11:10: the 12:10 minute has left the window
        third = await tp.throughput(client)
        assert (third.succeeded, third.failed) == (2, 1)
        assert counts.asked[2][0] == datetime(2030, 1, 1, 12, 29, tzinfo=UTC)  # the first minute not kept


async def test_an_expensive_chart_is_recomputed_behind_the_page(
    tmp_path: Path, counts: Counts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past BEHIND_COST a request gets the last chart at once while one background computation brings
    the next: with a million jobs in the open minutes the count (330 ms on PostgreSQL) was the
    overview's p99 in bench.service flat."""
    counts.delay = 0.3
    monkeypatch.setattr(tp, "BEHIND_COST", 0.2)
    monkeypatch.setattr(tp, "CACHE_SECONDS", 0.0)  # never fresh: every request wants a new count
    clock = ManualClock(datetime(2030, 1, 1, 12, 30, 20, tzinfo=UTC))
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}"), clock=clock) as client:
        await _finish(client, OutcomeKind.SUCCEEDED, clock.now(), 2)
        first = await tp.throughput(client)  # no chart yet: computed in front of the page
        assert (len(counts.asked), first.succeeded) == (1, 2)
        await _finish(client, OutcomeKind.FAILED, clock.now(), 1)

        waited = time.monotonic()
        second = await tp.throughput(client)
        assert time.monotonic() - waited < 0.2  # did not wait for the 0.3 s count
        assert second is first
        again = await tp.throughput(client)  # while it runs, no second computation starts
        assert again is first
        memo = tp._memos[client.store]
        assert memo.behind is not None
        await memo.behind
        assert len(counts.asked) == 2
        third = await tp.throughput(client)
        assert (third.succeeded, third.failed) == (2, 1)  # what the background count found
        assert memo.behind is not None
        await memo.behind  # the next one, started by that request: let it end before the store closes
