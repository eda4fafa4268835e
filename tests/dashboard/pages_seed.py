"""Seeds for the Workers, Purge and Overview browser tests: finished jobs stamped in the past, a worker
row with hostile text, job lookups (from the test process, on a loop of its own like seed.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from seed import _run, settings

from ingestq.client.client import Client
from ingestq.errors import JobNotFound
from ingestq.model.job import ClaimRequest, JobState, JsonDict, Outcome, OutcomeKind, WorkerBeat


async def _finished(url: str, kind: str, n: int, queue: str, outcome: OutcomeKind, age: float) -> list[int]:
    async with Client.connect(settings(url)) as client:
        when = client.clock.now() - timedelta(seconds=age)
        await client.store.job_insert_many(
            [client.new_job(kind, {"n": i}, queue=queue, run_at=when) for i in range(n)], when
        )
        claimed = await client.store.job_claim(ClaimRequest("seed", n, 60.0, (queue,), (kind,)), when)
        outcomes = [Outcome(j.id, "seed", j.attempt, outcome, error="old failure") for j in claimed]
        await client.store.job_finish_many(outcomes, when)
        return [j.id for j in claimed]


def finished(
    url: str, kind: str, n: int, queue: str, outcome: OutcomeKind = OutcomeKind.SUCCEEDED, age: float = 0
) -> list[int]:
    """`n` jobs of `kind` that finished `age` seconds ago with `outcome`."""
    return _run(_finished(url, kind, n, queue, outcome, age))


async def _existing(url: str, ids: list[int]) -> list[int]:
    found = []
    async with Client.connect(settings(url)) as client:
        for job_id in ids:
            try:
                await client.get(job_id)
            except JobNotFound:
                continue
            found.append(job_id)
    return found


def existing(url: str, ids: list[int]) -> list[int]:
    return _run(_existing(url, ids))


async def _states(url: str, ids: list[int]) -> list[JobState]:
    async with Client.connect(settings(url)) as client:
        return [(await client.get(i)).state for i in ids]


def states(url: str, ids: list[int]) -> list[JobState]:
    return _run(_states(url, ids))


async def _beat(url: str, beat: WorkerBeat, age: float) -> None:
    async with Client.connect(settings(url)) as client:
        await client.store.worker_heartbeat(beat, client.clock.now() - timedelta(seconds=age))


def worker_beat(url: str, beat: WorkerBeat, age: float = 0) -> None:
    """A worker row as if its last heartbeat was `age` seconds ago (no process behind it)."""
    _run(_beat(url, beat, age))


async def _enqueue(url: str, kind: str, payloads: Sequence[JsonDict], queue: str, attempts: int) -> list[int]:
    async with Client.connect(settings(url)) as client:
        jobs = await client.enqueue_many(kind, payloads, queue=queue, max_attempts=attempts)
        return [j.id for j in jobs]


def enqueue(url: str, kind: str, payloads: Sequence[JsonDict], queue: str, attempts: int = 1) -> list[int]:
    return _run(_enqueue(url, kind, payloads, queue, attempts))


async def _cancel(url: str, ids: list[int]) -> None:
    async with Client.connect(settings(url)) as client:
        for job_id in ids:
            await client.cancel(job_id)


def cancel(url: str, ids: list[int]) -> None:
    _run(_cancel(url, ids))
