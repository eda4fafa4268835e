"""SQLite-specific behaviour: files and URLs, one-line errors, durability across a killed process,
cross-process claims and wake-ups, and query plans that stay on the partial indexes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from ingestq.errors import ConfigError, SchemaError, StoreError
from ingestq.model.job import ClaimRequest, JobFilter, JobState, NewJob
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.sqlite.connection import parse_sqlite_url
from ingestq.store.sqlite.engine import Q
from ingestq.store.sqlite.migrator import LATEST
from ingestq.store.sqlite.store import SqliteStore

CHILD = Path(__file__).with_name("sqlite_child.py")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def _migrated(path: Path, **kwargs: object) -> SqliteStore:
    store = SqliteStore(path, **kwargs)  # type: ignore[arg-type]
    await store.open()
    await store.migrate()
    return store


async def _child(*args: str) -> tuple[int, str, str]:
    """Run sqlite_child.py in a real process: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- URLs and files -----------------------------------------------------------------------------------
def test_url_forms() -> None:
    assert parse_sqlite_url("sqlite:///rel/dir/q.db") == Path("rel/dir/q.db")
    assert parse_sqlite_url("sqlite:////abs/dir/q.db") == Path("/abs/dir/q.db")
    assert parse_sqlite_url("sqlite:///./.ingestq/ingestq.db") == Path(".ingestq/ingestq.db")
    for bad in ("sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///dir/"):
        with pytest.raises(ConfigError, match="SQLite URL"):
            parse_sqlite_url(bad)
    with pytest.raises(ConfigError, match="in-memory"):
        parse_sqlite_url("sqlite:///:memory:")


async def test_relative_url_creates_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(Settings(database_url="sqlite:///deep/er/q.db"))
    await store.open()
    try:
        assert await store.migrate() == list(range(1, LATEST + 1))
    finally:
        await store.close()
    assert (tmp_path / "deep" / "er" / "q.db").is_file()


async def test_wal_and_synchronous_settings(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SqliteStore.from_settings(Settings(database_url=f"sqlite:///{path}", sqlite_synchronous="FULL"))
    await store.open()
    try:
        engine = store._e
        assert await store._run(lambda: engine.conn.pragma("synchronous")) == 2  # FULL
        assert await store._run(lambda: engine.conn.pragma("foreign_keys")) == 1
    finally:
        await store.close()
    probe = apsw.Connection(str(path))
    try:
        assert probe.pragma("journal_mode") == "wal"
    finally:
        probe.close()


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=r"is not a SQLite database$") as info:
        await store.open()
    assert "\n" not in str(info.value)
    assert path.read_bytes().startswith(b"these are my notes")  # untouched


async def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        await SqliteStore(tmp_path).open()


async def test_folder_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder") as info:
        await SqliteStore(blocker / "sub" / "q.db").open()
    assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await (await _migrated(path)).close()
    path.chmod(0)
    with pytest.raises(StoreError, match="cannot open"):
        await SqliteStore(path).open()


async def test_methods_before_open_say_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    with pytest.raises(StoreError, match="not open"):
        await store.job_get(1)
    await store.close()  # closing an unopened store is harmless


async def test_unmigrated_file_says_to_migrate(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    try:
        for call in (store.job_get(1), store.stats(T0), store.job_list(JobFilter()), store.queue_list()):
            with pytest.raises(SchemaError, match="not initialised: run `ingestq db migrate`"):
                await call
    finally:
        await store.close()


async def test_locked_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = await _migrated(path, busy_timeout_ms=50)
    holder = apsw.Connection(str(path))
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked") as info:
            await store.job_insert_many([NewJob(kind="k")], T0)
        assert "\n" not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(await store.job_insert_many([NewJob(kind="k")], T0)) == 1  # usable again
    await store.close()


# --- durability and processes -------------------------------------------------------------------------
async def test_an_enqueue_that_returned_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await (await _migrated(path)).close()
    code, _, err = await _child("enqueue-then-die", str(path), "250")
    assert code == -9, err
    store = SqliteStore(path)
    await store.open()
    try:
        jobs = await store.job_list(JobFilter(limit=1000))
        assert sorted(j.payload["i"] for j in jobs) == list(range(250))
    finally:
        await store.close()


async def test_processes_claiming_at_once_never_share_a_job(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = await _migrated(path)
    past = T0.replace(year=2020)  # the children claim at the real time
    await store.job_insert_many([NewJob(kind="k") for _ in range(600)], past)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            "drain",
            str(path),
            f"proc{n}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(3)
    ]
    for step in (b"ready\n", b"first\n"):  # all open, then all holding a first batch, before the race
        for proc in procs:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 60) == step
        if step == b"ready\n":
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
    outputs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
    assert all(p.returncode == 0 for p in procs)
    results = [out.decode() for out, _ in outputs]
    ids = [int(i) for out in results for i in out.split()]
    assert len(ids) == 600
    assert len(set(ids)) == 600
    succeeded = await store.job_list(JobFilter(states=(JobState.SUCCEEDED,), limit=1000))
    assert len(succeeded) == 600
    assert all(out.split() for out in results), "every process should have claimed some jobs"
    await store.close()


async def test_wait_wakes_on_an_enqueue_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = await _migrated(path)

    async def worker_loop() -> None:
        # What a worker does: claim, and wait when nothing came (spurious wake-ups are allowed). With a
        # 60 s max_wait, only the change check can end it within the 30 s below.
        request = ClaimRequest(worker_id="w", limit=1, lease_seconds=60)
        while not await store.job_claim(request, datetime.now(UTC)):
            await store.wait_for_jobs(60)

    try:
        waiting = asyncio.create_task(worker_loop())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        code, _, err = await _child("enqueue", str(path), "1")
        assert code == 0, err
        await asyncio.wait_for(waiting, 30)
    finally:
        await store.close()


async def test_a_commit_before_the_first_wait_is_not_missed(tmp_path: Path) -> None:
    """A worker's first cycle: claim (nothing), another process enqueues, then the worker waits."""
    path = tmp_path / "q.db"
    await (await _migrated(path)).close()
    waiter, other = SqliteStore(path), SqliteStore(path)
    await waiter.open()
    await other.open()
    try:
        await other.job_insert_many([NewJob(kind="k")], T0)
        await asyncio.wait_for(waiter.wait_for_jobs(60), 10)
    finally:
        await waiter.close()
        await other.close()


async def test_wait_returns_at_once_after_an_enqueue_here(tmp_path: Path) -> None:
    store = await _migrated(tmp_path / "q.db")
    try:
        await store.wait_for_jobs(0.01)
        await store.job_insert_many([NewJob(kind="k")], T0)
        await asyncio.wait_for(store.wait_for_jobs(60), 5)
    finally:
        await store.close()


async def test_wait_times_out_when_nothing_happens(tmp_path: Path) -> None:
    store = await _migrated(tmp_path / "q.db")
    try:
        # A wake-up left over from migrating may end a wait early (allowed); then waits block.
        for _ in range(5):
            started = time.monotonic()
            await store.wait_for_jobs(0.2)
            if time.monotonic() - started >= 0.19:
                break
        else:
            raise AssertionError("wait_for_jobs kept returning early with nothing happening")
    finally:
        await store.close()


# --- cost does not grow with history (guarantee 10) ---------------------------------------------------
CLAIMS = [
    "job_claim",
    "job_claim_queue",
    "job_claim_queues",
    "job_claim_capped",
    "job_claim_queue_capped",
    "job_claim_queues_capped",
]
HOT_QUERIES = [
    *CLAIMS,
    "job_position",
    "queue_depth",
    "job_rescue_stale",
    "stats_queued",
    "stats_oldest_due",
    "stats_running_by_worker",
    "job_get_unfinished_by_dedupe_key",
    "job_extend_leases",
    "job_prune",
]


@pytest.mark.parametrize("name", HOT_QUERIES)
async def test_hot_queries_never_scan_the_jobs_table(tmp_path: Path, name: str) -> None:
    """Each hot query reads ingestq_jobs only through a partial index of unfinished (or, for pruning,
    finished-by-age) rows, or by primary key: a plan that scans the table would grow with history."""
    path = tmp_path / "q.db"
    await (await _migrated(path)).close()
    conn = apsw.Connection(str(path))
    try:
        conn.execute("ANALYZE")
        params = {
            p: None if p == "kinds" else ('["a"]' if p in ("queues", "job_ids") else 1)
            for p in _param_names(Q[name])
        }
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {Q[name]}", params)]
    finally:
        conn.close()
    scans = [step for step in plan if step.startswith("SCAN ingestq_jobs") and "INDEX" not in step]
    assert not scans, plan


@pytest.mark.parametrize("name", CLAIMS)
async def test_claims_seek_each_priority_in_claim_order(tmp_path: Path, name: str) -> None:
    """Claims are planned as one index range per priority (skip-scan) that already yields claim order:
    jobs scheduled for later are never walked, and nothing is sorted."""
    path = tmp_path / "q.db"
    await (await _migrated(path)).close()
    conn = apsw.Connection(str(path))
    try:
        params = {
            p: None if p == "kinds" else ('["a"]' if p == "queues" else 1) for p in _param_names(Q[name])
        }
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {Q[name]}", params)]
    finally:
        conn.close()
    assert any("ANY(priority)" in step and "run_at<?" in step for step in plan), plan
    assert not any("ORDER BY" in step for step in plan), plan


def _param_names(sql: str) -> list[str]:
    import re

    return sorted(set(re.findall(r":(\w+)", sql)))
