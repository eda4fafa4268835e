"""Client operations against every real backend (the `store` fixture is parametrised over them)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestq.client.client import Client, validate_payload
from ingestq.clock import ManualClock
from ingestq.errors import (
    ConfigError,
    InvalidJobState,
    InvalidPayload,
    JobNotFound,
    QueueFull,
    SchemaError,
)
from ingestq.model.job import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUE,
    ClaimRequest,
    JobFilter,
    JobState,
    Outcome,
    OutcomeKind,
    QueueConfig,
    WorkerBeat,
)
from ingestq.settings import Settings
from ingestq.store import Store
from ingestq.tasks.registry import Registry

registry = Registry()


@registry.task(name="tests.send_email", queue="emails", priority=5, max_attempts=2)
def send_email(to: str) -> str:
    return to


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def client(store: Store, clock: ManualClock) -> Client:
    return Client(store, registry, clock)


async def test_enqueue_by_task_uses_its_defaults(client: Client) -> None:
    job = await client.enqueue(send_email, {"to": "a@example.com"})
    assert (job.kind, job.queue, job.priority, job.max_attempts) == ("tests.send_email", "emails", 5, 2)
    assert job.state is JobState.QUEUED
    assert job.payload == {"to": "a@example.com"}
    assert await client.get(job.id) == job


async def test_enqueue_by_name_uses_registered_defaults_and_overrides(client: Client) -> None:
    known = await client.enqueue("tests.send_email", {"to": "b"}, priority=9)
    assert (known.queue, known.priority, known.max_attempts) == ("emails", 9, 2)
    remote = await client.enqueue("elsewhere.kind", None, queue="remote", max_attempts=7)
    assert (remote.kind, remote.queue, remote.priority, remote.max_attempts) == (
        "elsewhere.kind",
        "remote",
        0,
        7,
    )
    plain = await client.enqueue("elsewhere.kind")
    assert (plain.queue, plain.max_attempts, plain.payload) == (DEFAULT_QUEUE, DEFAULT_MAX_ATTEMPTS, {})


def test_client_knows_the_builtin_kinds(store: Store) -> None:
    assert "ingestq.probe" in Client(store).registry.tasks
    assert "tests.send_email" in Client(store, registry).registry.tasks


async def test_delay_and_run_at(client: Client, clock: ManualClock) -> None:
    delayed = await client.enqueue("k", delay=30)
    assert delayed.run_at == clock.now() + timedelta(seconds=30)
    when = clock.now() + timedelta(hours=1)
    assert (await client.enqueue("k", run_at=when)).run_at == when
    with pytest.raises(ConfigError, match="either delay or run_at"):
        await client.enqueue("k", delay=1, run_at=when)
    with pytest.raises(ConfigError, match="timezone-aware"):
        await client.enqueue("k", run_at=datetime(2030, 1, 1))
    with pytest.raises(ConfigError, match="non-negative"):
        await client.enqueue("k", delay=-1)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ("text", "must be a JSON object"),
        ({"when": datetime(2030, 1, 1, tzinfo=UTC)}, "not JSON-serialisable"),
        ({"tags": {"a", "b"}}, "not JSON-serialisable"),
        ({"x": math.nan}, "not JSON-serialisable"),
        ({1: "one"}, "keys must be strings"),
    ],
)
async def test_bad_payload_is_refused_and_nothing_is_inserted(
    client: Client, payload: Any, message: str
) -> None:
    with pytest.raises(InvalidPayload, match=message):
        await client.enqueue("k", payload)
    with pytest.raises(InvalidPayload, match=message):
        await client.enqueue_many("k", [{"ok": 1}, payload])
    with pytest.raises(InvalidPayload, match=message):
        await client.enqueue_many("k", [{"ok": 1}, payload], return_jobs=False)
    assert await client.list() == []


async def test_enqueue_many_ids_only(client: Client, clock: ManualClock) -> None:
    payloads = [{"n": n, "s": 'é"', "l": [1.5, None, True]} for n in range(5)]
    ids = await client.enqueue_many(send_email, [*payloads, None], delay=60, return_jobs=False)
    assert len(ids) == 6
    assert ids == sorted(ids)
    jobs = [await client.get(i) for i in ids]
    assert [j.payload for j in jobs] == [*payloads, {}]
    assert {(j.kind, j.queue, j.priority, j.max_attempts) for j in jobs} == {
        ("tests.send_email", "emails", 5, 2)
    }
    assert {j.run_at for j in jobs} == {clock.now() + timedelta(seconds=60)}
    assert await client.enqueue_many("k", [], return_jobs=False) == []


def test_validate_payload_round_trips() -> None:
    payload = {"a": [1, 2.5, None, True, {"b": "c"}]}
    assert validate_payload(payload) == payload
    assert validate_payload(None) == {}


async def test_enqueue_many_inserts_in_order(client: Client) -> None:
    jobs = await client.enqueue_many("k", ({"n": n} for n in range(5)), queue="bulk", priority=3)
    assert [j.payload["n"] for j in jobs] == list(range(5))
    assert {(j.queue, j.priority) for j in jobs} == {("bulk", 3)}
    assert len({j.id for j in jobs}) == 5
    assert await client.enqueue_many("k", []) == []
    mixed = await client.insert_many([client.new_job("a", {}), client.new_job(send_email, {"to": "x"})])
    assert [j.kind for j in mixed] == ["a", "tests.send_email"]


async def test_dedupe_key_returns_the_unfinished_job(client: Client) -> None:
    first = await client.enqueue("k", {"v": 1}, dedupe_key="doc-1")
    again = await client.enqueue("k", {"v": 2}, dedupe_key="doc-1")
    assert again.id == first.id
    await client.cancel(first.id)
    fresh = await client.enqueue("k", {"v": 3}, dedupe_key="doc-1")
    assert fresh.id != first.id


async def test_queue_full_inserts_nothing(client: Client) -> None:
    config = await client.configure_queue("small", 3)
    assert config.max_depth == 3
    assert [q.max_depth for q in await client.queues() if q.name == "small"] == [3]
    await client.enqueue_many("k", [{}, {}], queue="small")
    with pytest.raises(QueueFull) as info:
        await client.enqueue_many("k", [{}, {}], queue="small")
    assert info.value.queue == "small"
    assert len(await client.list(JobFilter(queues=("small",)))) == 2
    await client.enqueue("k", queue="small")
    with pytest.raises(QueueFull):
        await client.enqueue("k", queue="small")
    await client.configure_queue("small", None)
    await client.enqueue("k", queue="small")


async def test_pause_and_resume_a_queue(client: Client) -> None:
    paused = await client.pause_queue("q")
    assert paused.paused
    assert paused.paused_at == client.clock.now()
    assert (await client.configure_queue("q", 5)).paused  # setting the depth keeps the pause
    assert await client.queues() == [QueueConfig("q", 5, paused.paused_at)]
    resumed = await client.resume_queue("q")
    assert (resumed.max_depth, resumed.paused) == (5, False)
    with pytest.raises(ConfigError):
        await client.pause_queue("")


async def test_get_missing_job(client: Client) -> None:
    with pytest.raises(JobNotFound, match="job 424242 not found"):
        await client.get(424242)


async def test_list_filters_and_keyset_pagination(client: Client) -> None:
    made = await client.enqueue_many("a", [{"n": n} for n in range(7)])
    other = await client.enqueue("b", queue="q2")
    seen: list[int] = []
    before: int | None = None
    while True:
        page = await client.list(JobFilter(kinds=("a",), before_id=before, limit=3))
        if not page:
            break
        seen.extend(j.id for j in page)
        before = page[-1].id
    assert seen == sorted((j.id for j in made), reverse=True)
    assert [j.id for j in await client.list(JobFilter(queues=("q2",)))] == [other.id]
    await client.cancel(made[0].id)
    cancelled = await client.list(JobFilter(states=(JobState.CANCELLED,)))
    assert [j.id for j in cancelled] == [made[0].id]
    with pytest.raises(ConfigError, match="limit"):
        await client.list(JobFilter(limit=0))


async def test_cancel_retry_cycle(client: Client) -> None:
    job = await client.enqueue("k")
    cancelled = await client.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    retried = await client.retry(job.id)
    assert retried.state is JobState.QUEUED
    with pytest.raises(InvalidJobState):
        await client.retry(job.id)
    with pytest.raises(JobNotFound):
        await client.cancel(999_999)
    with pytest.raises(JobNotFound):
        await client.retry(999_999)


async def test_cancel_of_running_job_is_a_request(client: Client, store: Store, clock: ManualClock) -> None:
    job = await client.enqueue("k")
    (claimed,) = await store.job_claim(ClaimRequest("w1", 1, 30), clock.now())
    assert claimed.id == job.id
    after = await client.cancel(job.id)
    assert after.state is JobState.RUNNING
    assert after.cancel_requested


async def test_position_follows_claim_order(client: Client) -> None:
    low = await client.enqueue("k", queue="p")
    low2 = await client.enqueue("k", queue="p")
    high = await client.enqueue("k", queue="p", priority=10)
    assert [await client.position(j.id) for j in (high, low, low2)] == [1, 2, 3]
    await client.cancel(low.id)
    assert await client.position(low.id) is None
    assert await client.position(low2.id) == 2


async def test_stats_and_workers(client: Client, store: Store, clock: ManualClock) -> None:
    await client.enqueue_many("k", [{}, {}, {}], queue="s")
    job = await client.enqueue("k", queue="s")
    await client.cancel(job.id)
    by_queue = {s.queue: s for s in await client.stats()}
    assert by_queue["s"].counts.get(JobState.QUEUED) == 3
    assert by_queue["s"].counts.get(JobState.CANCELLED) == 1
    assert await client.workers() == []
    beat = WorkerBeat("w-1", "host", 123, None, 4, (), 30.0)
    await store.worker_heartbeat(beat, clock.now())
    assert [w.worker_id for w in await client.workers()] == ["w-1"]


async def test_purge_finished_jobs(client: Client, store: Store, clock: ManualClock) -> None:
    jobs = await client.enqueue_many("k", [{}] * 4)
    await client.cancel(jobs[0].id)
    await client.cancel(jobs[1].id)
    (running,) = await store.job_claim(ClaimRequest("w", 1, 30), clock.now())
    outcome = Outcome(running.id, "w", running.attempt, OutcomeKind.SUCCEEDED, result=1)
    assert await store.job_finish_many([outcome], clock.now()) == {running.id}
    clock.advance(100)
    assert await client.purge([JobState.CANCELLED], older_than=1000) == 0
    assert await client.purge([JobState.CANCELLED], queue="elsewhere") == 0
    assert await client.purge([JobState.CANCELLED], older_than=50) == 2
    assert await client.purge() == 1
    assert len(await client.list()) == 1
    with pytest.raises(ConfigError, match="only finished jobs"):
        await client.purge([JobState.QUEUED])


async def test_new_job_rejects_bad_options(client: Client) -> None:
    with pytest.raises(ConfigError, match="max_attempts"):
        client.new_job("k", max_attempts=0)
    with pytest.raises(ConfigError, match="kind"):
        client.new_job("")
    with pytest.raises(ConfigError, match="max_depth"):
        await client.configure_queue("q", -1)


async def test_connect_auto_migrates_a_fresh_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    async with await Client.connect(settings) as client:
        job = await client.enqueue("k")
        version, latest = await client.schema_version()
        assert version == latest >= 1
    async with Client.connect(settings) as client:  # no await needed with `async with`
        assert (await client.get(job.id)).id == job.id
    client = await Client.connect(settings)
    try:
        assert (await client.list())[0].id == job.id
    finally:
        await client.close()


async def test_connect_without_migrate_refuses_an_old_schema(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", auto_migrate=False)
    with pytest.raises(SchemaError, match="ingestq db migrate"):
        await Client.connect(settings)
    async with await Client.connect(settings, check_schema=False) as client:
        assert await client.migrate()
    async with await Client.connect(settings) as client:
        assert await client.list() == []
