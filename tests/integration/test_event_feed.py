"""The change feed behind the SSE routes (api/events/feed.py) and its stream framing (stream.py), on both
backends. The feed is stepped by hand (`look()`), so every expectation is about order, not timing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from ingestq.api.events import stream as stream_module
from ingestq.api.events.feed import JobFeed
from ingestq.api.events.stream import EventFilter, _frames
from ingestq.clock import SYSTEM_CLOCK
from ingestq.model.job import ClaimRequest, Job, NewJob, Outcome, OutcomeKind, Progress
from ingestq.store import Store


def now() -> datetime:
    return datetime.now(UTC)


async def claim(store: Store) -> Job:
    (job,) = await store.job_claim(ClaimRequest(worker_id="w", limit=1, lease_seconds=60), now())
    return job


async def finish(store: Store, job: Job, kind: OutcomeKind, **fields: object) -> None:
    assert job.lease_owner is not None
    applied = await store.job_finish_many(
        [Outcome(job.id, job.lease_owner, job.attempt, kind, **fields)],  # type: ignore[arg-type]
        now(),
    )
    assert job.id in applied


def told(feed: JobFeed, after: int = 0) -> list[tuple[str, int, str, int]]:
    return [
        (e.name, e.job_id, json.loads(e.data)["state"], json.loads(e.data)["attempt"])
        for e in feed.after(after)
    ]


async def test_each_change_is_told_once_in_order(store: Store) -> None:
    feed = JobFeed(store, SYSTEM_CLOCK)
    old = (await store.job_insert_many([NewJob(kind="k")], now()))[0]
    await feed.look(baseline=True)  # what exists now is the baseline: not announced
    (job,) = await store.job_insert_many([NewJob(kind="k")], now())
    await feed.look()
    running = await claim(store)
    assert running.id == old.id  # FIFO: the old one first, announced as it starts
    await feed.look()
    mine = await claim(store)
    await feed.look()
    await store.job_progress(mine.id, "w", mine.attempt, Progress("embed", 3, 10), now())
    await feed.look()
    await finish(store, mine, OutcomeKind.RETRY, error="flaky", run_at=now())  # back to the queue
    await feed.look()
    again = await claim(store)
    await feed.look()
    await finish(store, again, OutcomeKind.SUCCEEDED)
    await feed.look()
    await feed.look()  # the finish is re-read within the margin, and not told twice
    assert told(feed) == [
        ("job", job.id, "queued", 0),
        ("job", old.id, "running", 1),
        ("job", job.id, "running", 1),
        ("progress", job.id, "running", 1),
        ("job", job.id, "queued", 1),
        ("job", job.id, "running", 2),
        ("job", job.id, "succeeded", 2),
    ]


async def test_a_job_that_ran_and_finished_between_two_looks_tells_both_steps(store: Store) -> None:
    feed = JobFeed(store, SYSTEM_CLOCK)
    await feed.look(baseline=True)
    (job,) = await store.job_insert_many([NewJob(kind="k")], now())
    await feed.look()
    await finish(store, await claim(store), OutcomeKind.FAILED, error="bad input")
    await feed.look()
    assert [(state, attempt) for _, _, state, attempt in told(feed)] == [
        ("queued", 0),
        ("running", 1),
        ("failed", 1),
    ]
    assert '"error":"bad input"' in feed.after(0)[-1].data
    assert {e.job_id for e in feed.after(0)} == {job.id}
    # inserted, claimed and finished between two looks: every step is told, in order
    seq = feed.last_seq
    (quick,) = await store.job_insert_many([NewJob(kind="k")], now())
    await finish(store, await claim(store), OutcomeKind.SUCCEEDED)
    (slow,) = await store.job_insert_many([NewJob(kind="k")], now())
    await claim(store)
    await feed.look()
    assert told(feed, seq) == [
        ("job", quick.id, "queued", 0),
        ("job", quick.id, "running", 1),
        ("job", quick.id, "succeeded", 1),
        ("job", slow.id, "queued", 0),
        ("job", slow.id, "running", 1),
    ]


# Backend-free behaviour (numbering, framing, the window): on SQLite only, which is cheaper to set up.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@SQLITE_ONLY
async def test_resume_window_and_foreign_ids(store: Store) -> None:
    feed = JobFeed(store, SYSTEM_CLOCK, buffer=3)
    await feed.look(baseline=True)
    await store.job_insert_many([NewJob(kind="k") for _ in range(5)], now())
    await feed.look()
    assert feed.last_seq == 5
    assert [e.seq for e in feed.after(0)] == [3, 4, 5]  # the buffer keeps the newest 3
    assert feed.resumable(2)  # everything after 2 is still there
    assert not feed.resumable(1)  # 2 fell out of the buffer: reset
    assert not feed.resumable(9)  # never issued
    assert feed.parse_id(f"{feed.epoch}-4") == 4
    assert feed.parse_id("0badcafe-4") is None  # another process's numbering
    assert feed.parse_id(f"{feed.epoch}-x") is None
    assert feed.parse_id(None) is None


@SQLITE_ONLY
async def test_a_quiet_stream_sends_keep_alives_and_says_bye_at_shutdown(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "KEEPALIVE", 0.05)
    feed = JobFeed(store, SYSTEM_CLOCK, poll_interval=0.05)
    start = await feed.subscribe()
    frames = _frames(feed, EventFilter(), start, False, None, feed.unsubscribe)
    assert await anext(frames) == f"retry: {stream_module.RETRY_MS}\n\n"
    assert await anext(frames) == ": keep-alive\n\n"
    (job,) = await store.job_insert_many([NewJob(kind="k", queue="q")], now())
    frame = await asyncio.wait_for(anext(frames), 10)  # the feed's own loop found it
    assert frame.startswith(f"id: {feed.epoch}-")
    assert "event: job\n" in frame
    assert f'"job_id":{job.id}' in frame
    feed.begin_close()
    rest = [f async for f in frames if not f.startswith(":")]
    assert rest == ['event: bye\ndata: {"reason":"server shutting down"}\n\n']
    assert feed.subscribers == 0
    await feed.close()


@SQLITE_ONLY
async def test_a_feed_nobody_follows_stops_after_its_window_and_old_ids_no_longer_resume(
    store: Store,
) -> None:
    feed = JobFeed(store, SYSTEM_CLOCK, poll_interval=0.02, linger=0.0)
    await feed.subscribe()
    await store.job_insert_many([NewJob(kind="k")], now())
    await feed.wait_after(0, 10)  # the feed's own loop finds the job
    old_id = f"{feed.epoch}-{feed.last_seq}"
    assert feed.parse_id(old_id) == 1
    feed.unsubscribe()
    for _ in range(500):  # the feed stops at its next look (linger 0)
        if feed.parse_id(old_id) is None:
            break
        await asyncio.sleep(0.01)
    assert feed.parse_id(old_id) is None  # what happened unwatched is unknown: a new numbering
    assert feed.after(0) == []
    # a new stream starts a new watch from a fresh baseline
    start = await feed.subscribe()
    (job,) = await store.job_insert_many([NewJob(kind="k")], now())
    await feed.wait_after(start, 10)
    assert [e.job_id for e in feed.after(start)] == [job.id]
    feed.unsubscribe()
    await feed.close()
