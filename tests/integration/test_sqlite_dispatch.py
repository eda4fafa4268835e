"""Where the SQLite store runs its statements (store/sqlite/dispatch.py): the worker's hot path on the
event loop's thread when that cannot stall the loop, everything else and every wait on the store's thread;
checkpoints always on the thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import apsw
import pytest

from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.store.sqlite import dispatch
from ingestq.store.sqlite.connection import BusyWait
from ingestq.store.sqlite.dispatch import Dispatch
from ingestq.store.sqlite.engine import Engine
from ingestq.store.sqlite.store import SqliteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
REQ = ClaimRequest(worker_id="w1", limit=100, lease_seconds=60)


async def _store(path: Path, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> SqliteStore:
    store = SqliteStore(path, synchronous=synchronous)
    await store.open()
    await store.migrate()
    return store


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each claim-and-finish transaction ran on."""
    seen: list[str] = []
    original = Engine.job_finish_and_claim

    def spy(self: Engine, *args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(self, *args)

    monkeypatch.setattr(Engine, "job_finish_and_claim", spy)
    return seen


async def test_the_hot_path_runs_on_the_loop_thread_when_the_lock_is_free(
    tmp_path: Path, threads_seen: list[str]
) -> None:
    store = await _store(tmp_path / "q.db")
    try:
        await store.job_insert_many([NewJob(kind="k") for _ in range(3)], T0)
        _, jobs = await store.job_finish_and_claim([], REQ, T0)
        assert len(jobs) == 3
        assert threads_seen == [threading.current_thread().name]
    finally:
        await store.close()


async def test_a_held_write_lock_never_stalls_the_loop(tmp_path: Path, threads_seen: list[str]) -> None:
    """Another connection holds the write lock: the claim waits for it on the store's thread while the
    loop keeps running, then gets the jobs once the lock is released."""
    path = tmp_path / "q.db"
    store = await _store(path)
    holder = apsw.Connection(str(path))
    try:
        await store.job_insert_many([NewJob(kind="k") for _ in range(2)], T0)
        holder.execute("BEGIN IMMEDIATE")
        claim = asyncio.create_task(store.job_finish_and_claim([], REQ, T0))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(20):  # the loop is free: this task runs while the claim waits
            await asyncio.sleep(0.005)
        # a claim waiting on the loop's thread would hold it for the whole busy timeout (10 s)
        assert loop.time() - started < 5
        assert not claim.done()
        holder.execute("COMMIT")
        _, jobs = await asyncio.wait_for(claim, 10)
        assert len(jobs) == 2
        assert len(threads_seen) == 2  # tried on the loop's thread, then waited on the store's
        assert threads_seen[0] == threading.current_thread().name
        assert threads_seen[1].startswith("ingestq-sqlite")
    finally:
        holder.close()
        await store.close()


async def test_synchronous_full_keeps_commits_off_the_loop(tmp_path: Path, threads_seen: list[str]) -> None:
    """Under synchronous=FULL every commit waits for the disk: never on the loop's thread."""
    store = await _store(tmp_path / "q.db", synchronous="FULL")
    try:
        await store.job_insert_many([NewJob(kind="k")], T0)
        await store.job_finish_and_claim([], REQ, T0)
        assert len(threads_seen) == 1
        assert threads_seen[0].startswith("ingestq-sqlite")
    finally:
        await store.close()


async def _drain_and_measure_wal(path: Path) -> int:
    """Jobs of half a page each, claimed and finished in batches: the WAL's size at the end, in pages."""
    store = await _store(path)
    try:
        payload = {"text": "x" * 2000}
        for _ in range(4):
            await store.job_insert_many([NewJob(kind="k", payload=payload) for _ in range(100)], T0)
        outcomes: list[Outcome] = []
        while True:
            _, jobs = await store.job_finish_and_claim(outcomes, REQ, T0)
            if not jobs:
                break
            outcomes = [Outcome(j.id, "w1", j.attempt, OutcomeKind.SUCCEEDED) for j in jobs]
        await store.job_rescue_stale(T0)  # a call on the thread: it runs after any checkpoint queued
        return os.stat(f"{path}-wal").st_size // 4096
    finally:
        await store.close()


async def test_checkpoints_run_on_the_store_thread_and_bound_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's auto-checkpoint is replaced (it would run inside a commit on the loop): the store's
    thread checkpoints at the same threshold, so the WAL stays bounded by it."""
    checkpoints: list[str] = []
    original = dispatch.Dispatch._checkpoint

    def spy(self: dispatch.Dispatch) -> None:
        checkpoints.append(threading.current_thread().name)
        original(self)

    monkeypatch.setattr(dispatch.Dispatch, "_checkpoint", spy)
    monkeypatch.setattr(dispatch, "CHECKPOINT_PAGES", 10**9)
    unbounded = await _drain_and_measure_wal(tmp_path / "never.db")
    assert not checkpoints
    monkeypatch.setattr(dispatch, "CHECKPOINT_PAGES", 50)
    bounded = await _drain_and_measure_wal(tmp_path / "q.db")
    assert checkpoints
    assert all(name.startswith("ingestq-sqlite") for name in checkpoints)
    # Typically a fifth; a loaded machine once gave 0.39 (a passive checkpoint that could not finish
    # leaves the WAL to grow until the next one): half still tells a bounded WAL from an unbounded one.
    assert bounded < unbounded / 2, (bounded, unbounded)


def test_busy_wait_backs_off_then_gives_up_at_its_timeout() -> None:
    busy = BusyWait(timeout_ms=30)
    retries = 0
    while busy(retries):
        retries += 1
    assert 5 < retries < 100  # 0.1 ms steps at first, then 2 ms ones, for about 30 ms
    patient = BusyWait(timeout_ms=60_000)
    assert patient(0)
    assert patient(5_000)  # a long wait is thousands of tries: the back-off stays capped
    patient.wait = False
    assert not patient(0)


async def test_a_wal_that_cannot_be_rewound_is_checkpointed_per_threshold_not_per_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader in another process holds an old snapshot, so checkpoints cannot rewind the WAL and it
    stays over the threshold: the store still checkpoints once per threshold's worth of new frames."""
    monkeypatch.setattr(dispatch, "CHECKPOINT_PAGES", 50)
    checkpoints = 0
    original = dispatch.Dispatch._checkpoint

    def count(self: dispatch.Dispatch) -> None:
        nonlocal checkpoints
        checkpoints += 1
        original(self)

    monkeypatch.setattr(dispatch.Dispatch, "_checkpoint", count)
    path = tmp_path / "q.db"
    store = await _store(path)
    reader = apsw.Connection(str(path))
    try:
        await store.job_insert_many([NewJob(kind="k") for _ in range(600)], T0)  # checkpointed
        await store.job_insert_many([NewJob(kind="k")], T0)  # rewinds the WAL, stays in it
        reader.execute("BEGIN")  # a snapshot that needs those frames: the WAL cannot be rewound now
        assert reader.execute("SELECT count(*) FROM ingestq_jobs").fetchall() == [(601,)]
        commits = 0
        outcomes: list[Outcome] = []
        while True:
            _, jobs = await store.job_finish_and_claim(outcomes, replace(REQ, limit=10), T0)
            commits += 1
            if not jobs:
                break
            outcomes = [Outcome(j.id, "w1", j.attempt, OutcomeKind.SUCCEEDED) for j in jobs]
        await store.job_rescue_stale(T0)  # a call on the thread: it runs after any checkpoint queued
        assert 0 < checkpoints < commits / 3, (checkpoints, commits)
    finally:
        reader.close()
        await store.close()


async def test_an_urgent_call_runs_before_the_calls_queued_ahead_of_it() -> None:
    """A heartbeat (urgent) must not wait behind bulk writes already queued on the store's thread."""
    dispatch = Dispatch("test store", busy_timeout_ms=0, inline=False)
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(10)
        order.append("blocker")

    def write(name: str) -> str:
        order.append(name)
        return name

    first = asyncio.ensure_future(dispatch.run(blocker))
    await asyncio.to_thread(started.wait, 10)  # the thread is busy: everything below queues
    bulk = [asyncio.ensure_future(dispatch.run(write, f"bulk{i}")) for i in range(5)]
    beat = asyncio.ensure_future(dispatch.run_urgent(write, "heartbeat"))
    await asyncio.sleep(0)  # let the submissions reach the thread's queue
    release.set()
    assert await beat == "heartbeat"
    await asyncio.gather(first, *bulk)
    assert order == ["blocker", "heartbeat", "bulk0", "bulk1", "bulk2", "bulk3", "bulk4"]
    await dispatch.close(lambda: None)


def test_a_checkpoint_that_meets_another_processs_checkpoint_is_not_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The soak's SQLite workers logged `WAL checkpoint failed: database is locked` dozens of times an
    hour: their passive checkpoints meeting each other's. The other checkpoint does the work, so that
    is no warning; a real failure still is."""
    path = tmp_path / "q.db"
    writer = apsw.Connection(str(path))
    writer.pragma("journal_mode", "wal")
    writer.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    reader = apsw.Connection(str(path))
    reader.execute("BEGIN")
    list(reader.execute("SELECT * FROM t"))  # holds a snapshot: a RESTART checkpoint must wait for it
    writer.execute("INSERT INTO t VALUES (2)")

    inside, release = threading.Event(), threading.Event()

    def wait_inside(_retries: int) -> bool:
        inside.set()
        return not release.wait(0.01)  # keep the checkpointer lock until released

    other = apsw.Connection(str(path))
    list(other.execute("SELECT count(*) FROM t"))  # it has opened the WAL: now it can checkpoint it
    other.set_busy_handler(wait_inside)

    def run_restart() -> None:
        # released before the reader left, it ends busy: the point was only to hold the lock meanwhile
        with contextlib.suppress(apsw.BusyError):
            other.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_RESTART)

    restart = threading.Thread(target=run_restart)
    restart.start()
    try:
        assert inside.wait(5), "the other checkpoint never started waiting"
        mine = Dispatch(str(path), 1000, inline=False)
        conn = apsw.Connection(str(path))
        list(conn.execute("SELECT count(*) FROM t"))
        mine.attach(conn)
        with caplog.at_level("DEBUG", logger="ingestq.store"):
            mine._checkpoint()
        assert [r.levelname for r in caplog.records] == ["DEBUG"]
        assert "another connection is checkpointing" in caplog.records[0].getMessage()
        mine.shutdown_now()
        conn.close()
    finally:
        release.set()
        restart.join(5)
        reader.execute("COMMIT")
        for c in (other, reader, writer):
            c.close()
