"""Paused queues (issue 9): the store keeps the paused state beside max_depth, reports it with every
heartbeat, and a claim leaves out the queues it is told to (ClaimRequest.exclude_queues): the worker's
claims exclude the paused queues from its last heartbeat on."""

from __future__ import annotations

import pytest
from contract_helpers import LEASE, T0, at, insert, outcome

from ingestq.errors import QueueFull
from ingestq.model.job import ClaimRequest, Job, NewJob, OutcomeKind, QueueConfig, WorkerBeat
from ingestq.store import Store


def _claim(
    queues: tuple[str, ...] | None, exclude: tuple[str, ...] | None, limit: int = 10, **caps: int
) -> ClaimRequest:
    return ClaimRequest(
        worker_id="w1",
        limit=limit,
        lease_seconds=LEASE,
        queues=queues,
        exclude_queues=exclude,
        kind_limits=caps or None,
    )


async def _queued(store: Store) -> dict[str, Job]:
    jobs: dict[str, Job] = {}
    for queue in ("a", "b", "c"):
        jobs[queue] = await insert(store, queue=queue)
    return jobs


@pytest.mark.parametrize(
    "queues",
    [None, ("a",), ("a", "b"), ("a", "b", "c")],
    ids=["every queue", "one queue", "two queues", "three queues"],
)
async def test_a_claim_leaves_out_the_excluded_queues(store: Store, queues: tuple[str, ...] | None) -> None:
    jobs = await _queued(store)
    served = set(queues or ("a", "b", "c"))
    claimed = await store.job_claim(_claim(queues, ("a",)), T0)
    assert {j.queue for j in claimed} == served - {"a"}
    # the capped statements (a kind's concurrency) honour it too
    capped = await store.job_claim(_claim(queues, ("a", "c"), k=5), T0)
    assert capped == []
    assert (await store.job_get(jobs["a"].id)).state.value == "queued"  # type: ignore[union-attr]
    # no longer excluded: claimable again
    (again,) = await store.job_claim(_claim(queues, None), T0)
    assert again.id == jobs["a"].id


async def test_finish_and_claim_leaves_out_the_excluded_queues(store: Store) -> None:
    jobs = await _queued(store)
    (first,) = await store.job_claim(_claim(("c",), None, limit=1), T0)
    applied, claimed = await store.job_finish_and_claim(
        [outcome(first, OutcomeKind.SUCCEEDED)], _claim(None, ("a",)), T0
    )
    assert applied == {first.id}
    assert [j.id for j in claimed] == [jobs["b"].id]
    for queues in (("a",), ("a", "b")):  # the one-queue and several-queue statements
        await store.job_insert_many([NewJob(kind="k", queue="c")], T0)
        (held,) = await store.job_claim(_claim(("c",), None, limit=1), T0)
        applied, claimed = await store.job_finish_and_claim(
            [outcome(held, OutcomeKind.SUCCEEDED)], _claim(queues, ("a",)), T0
        )
        assert applied == {held.id}
        assert claimed == []


async def test_pause_and_resume_keep_max_depth_and_configure_keeps_the_pause(store: Store) -> None:
    assert await store.queue_pause("new", True, at(1)) == QueueConfig("new", None, at(1))  # creates the row
    assert await store.queue_configure(QueueConfig("new", max_depth=2)) == QueueConfig("new", 2, at(1))
    assert await store.queue_pause("new", True, at(5)) == QueueConfig("new", 2, at(1))  # already paused
    await store.queue_configure(QueueConfig("other", max_depth=7))
    assert await store.queue_list() == [QueueConfig("new", 2, at(1)), QueueConfig("other", 7)]
    assert (await store.queue_list())[0].paused
    resumed = await store.queue_pause("new", False, at(9))
    assert resumed == QueueConfig("new", 2, None)
    assert not resumed.paused
    assert await store.queue_pause("never-paused", False, at(9)) == QueueConfig("never-paused")


async def test_a_paused_queue_still_accepts_jobs_up_to_its_depth(store: Store) -> None:
    await store.queue_configure(QueueConfig("q", max_depth=1))
    await store.queue_pause("q", True, T0)
    await insert(store, queue="q")
    with pytest.raises(QueueFull):
        await insert(store, queue="q")


async def test_the_heartbeat_reports_the_paused_queues(store: Store) -> None:
    beat = WorkerBeat("w1", "h", 1, None, 2, (), LEASE)
    assert (await store.worker_heartbeat(beat, T0)).paused_queues == frozenset()
    await store.queue_configure(QueueConfig("limited", max_depth=3))
    await store.queue_pause("a", True, T0)
    await store.queue_pause("b", True, T0)
    assert (await store.worker_heartbeat(beat, at(1))).paused_queues == {"a", "b"}
    await store.queue_pause("a", False, at(2))
    assert (await store.worker_heartbeat(beat, at(3))).paused_queues == {"b"}
