"""SyncClient: the blocking twin of Client, generated from it."""

from __future__ import annotations

import inspect
import threading

import pytest

from ingestq.client.client import Client
from ingestq.client.sync import SyncClient
from ingestq.errors import JobNotFound
from ingestq.model.job import JobFilter, JobState
from ingestq.settings import Settings


def _public(predicate: object) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(Client)
        if not name.startswith("_") and callable(predicate) and predicate(member)
    }


def test_every_public_client_method_is_on_the_sync_client() -> None:
    coroutines = _public(inspect.iscoroutinefunction) - {"connect"}  # connect has a sync twin of its own
    plain = _public(inspect.isfunction) - coroutines - {"connect"}
    assert coroutines, "introspection found no coroutine methods"
    for name in coroutines | plain | {"connect", "close"}:
        assert hasattr(SyncClient, name), f"SyncClient lacks {name}"
        assert not inspect.iscoroutinefunction(getattr(SyncClient, name)), name


@pytest.fixture
def sync_client(settings: Settings) -> SyncClient:
    return SyncClient.connect(settings)


def test_sync_client_round_trip(sync_client: SyncClient) -> None:
    threads_before = threading.active_count()
    with sync_client as client:
        job = client.enqueue("ingestq.probe", {"seconds": 0}, queue="sync")
        assert client.get(job.id) == job
        assert [j.id for j in client.list(JobFilter(queues=("sync",)))] == [job.id]
        assert client.position(job.id) == 1
        assert client.cancel(job.id).state is JobState.CANCELLED
        assert client.retry(job.id).state is JobState.QUEUED
        many = client.enqueue_many("ingestq.probe", [{}, {}], queue="sync")
        assert len(many) == 2
        ids = client.enqueue_many("ingestq.probe", [{"n": 1}], queue="ids", return_jobs=False)
        assert client.get(ids[0]).payload == {"n": 1}
        assert client.new_job("k", {"a": 1}).payload == {"a": 1}
        counts = {s.queue: s.counts for s in client.stats()}
        assert counts["sync"][JobState.QUEUED] == 3
        with pytest.raises(JobNotFound):
            client.get(987654)
    assert threading.active_count() <= threads_before


async def test_sync_client_works_inside_a_running_event_loop(sync_client: SyncClient) -> None:
    # The private loop lives in its own thread, so a sync call from async code does not deadlock.
    with sync_client as client:
        job = client.enqueue("k")
        assert client.get(job.id).id == job.id


def test_the_written_out_enqueue_many_keeps_the_async_signature() -> None:
    sync = inspect.signature(SyncClient.enqueue_many)
    coro = inspect.signature(Client.enqueue_many)
    assert sync.parameters == coro.parameters
    assert SyncClient.enqueue_many.__doc__ == Client.enqueue_many.__doc__
