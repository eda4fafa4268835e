"""Persist job outcomes in batches.

Outcomes are queued in memory and written with one `store.job_finish_many` per batch. The writer task
wakes through an Event, and asyncio runs it only after every callback already scheduled in the current
loop iteration, so all jobs that finished "together" share one round trip without any timer: latency
stays at one loop turn when the worker is idle, and batches grow by themselves under load (River's
completer makes the same trade with a ticker; an Event is cheaper and never waits needlessly).

A failed write (database restarting) is retried with backoff; the jobs stay held meanwhile, so the
heartbeat keeps their leases alive and nothing is lost or run twice.

A handler that must commit its own writes with the job's completion (`JobContext.finalize_with`) hands
over a finalizer: that job's outcome is applied by calling it, alone, instead of in the batch.

With a `Claimer` (the worker's fetch loop), a write also claims jobs for the slots that are free by
then, in the same transaction (`store.job_finish_and_claim`): a steady drain costs one commit per batch
instead of two (the finished jobs' slots are exactly what the next claim fills).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from ingestq.clock import Clock
from ingestq.errors import StoreError
from ingestq.model.job import ClaimRequest, Job, Outcome, OutcomeKind
from ingestq.tasks.retry import error_message
from ingestq.tasks.task import Finalizer
from ingestq.worker.probes import NO_PROBES, Probes

if TYPE_CHECKING:  # annotations only (see tests/cli/test_worker_startup.py)
    from ingestq.store.base import Store

log = logging.getLogger("ingestq.worker")

T = TypeVar("T")

ISOLATE_AFTER = 3  # failed writes in a row before outcomes are tried one by one
RETRY_MAX_S = 0.5
"""The longest pause (jittered) between two tries of a failed write. While the database is away a write
waits in the store for a connection rather than failing fast, so retries do not hammer it; a longer
pause would leave finished jobs unrecorded (their slots taken) for seconds after it is back."""

DoneCallback = Callable[[list[Outcome], set[int]], None]


class Claimer(Protocol):
    def reserve(self, finishing: Sequence[Outcome]) -> ClaimRequest | None:
        """Free slots to fill with this write (reserved until `claimed`), or None to write only.
        `finishing`: the outcomes this write commits, whose jobs' slots it frees."""
        ...

    def claimed(self, request: ClaimRequest, jobs: list[Job] | None) -> None:
        """What the write claimed for `request`; None if the write failed (nothing was claimed, unless
        the commit happened and only the reply was lost)."""
        ...


class Completer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        on_done: DoneCallback,
        *,
        max_batch: int = 1000,
        probes: Probes = NO_PROBES,
        claimer: Claimer | None = None,
    ) -> None:
        self._store = store
        self._claimer = claimer
        self._failing = False
        self._clock = clock
        self._on_done = on_done
        self._max_batch = max_batch
        self._probes = probes
        self._pending: list[Outcome] = []
        self._finalizers: dict[int, Finalizer] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._give_up = False

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    @property
    def will_claim(self) -> bool:
        """True when the next write will also claim (outcomes without a finalizer are waiting and the
        store answers): the fetch loop leaves the claim to it."""
        if self._claimer is None or self._failing:
            return False
        finalizers = self._finalizers
        return any(o.job_id not in finalizers for o in self._pending)

    def add(self, outcome: Outcome, finalizer: Finalizer | None = None) -> None:
        if finalizer is not None:
            self._finalizers[outcome.job_id] = finalizer
        self._pending.append(outcome)
        self._idle.clear()
        self._wake.set()

    def drop(self, job_id: int) -> None:
        """Forget a not-yet-written outcome (the job was lost to another worker)."""
        self._pending = [o for o in self._pending if o.job_id != job_id]
        self._finalizers.pop(job_id, None)

    async def wait_idle(self) -> None:
        """Until every outcome added so far has been written."""
        await self._idle.wait()

    def close(self, give_up_on_errors: bool = False) -> None:
        """Let `run` return once everything pending is written. With `give_up_on_errors`, stop retrying a
        failing store: the leases will expire and the rescuer will requeue those jobs."""
        self._closing = True
        self._give_up = give_up_on_errors
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                applied = await self._write(batch)
                if applied is None:
                    return
                self._probes.hit("completed", applied)
            self._idle.set()
            if self._closing:
                return

    async def _write(self, batch: list[Outcome]) -> set[int] | None:
        plain = [o for o in batch if o.job_id not in self._finalizers]
        applied: set[int] = set()
        if plain:
            written = await self._write_plain(plain)
            if written is None:
                return None
            # Each outcome is reported as soon as it is committed: its job's slot frees then, not after
            # the batch's finalizers.
            self._on_done(plain, written)
            applied |= written
        for outcome in batch:
            finalizer = self._finalizers.get(outcome.job_id)
            if finalizer is None:
                continue
            ok = await self._retrying(
                1, functools.partial(finalizer, outcome), functools.partial(self._write_as_failure, outcome)
            )
            if ok is None:
                return None
            self._finalizers.pop(outcome.job_id, None)
            done = {outcome.job_id} if ok else set()
            self._on_done([outcome], done)
            applied |= done
        return applied

    async def _write_plain(self, outcomes: list[Outcome]) -> set[int] | None:
        applied: set[int] = set()
        pending = outcomes
        failures = 0
        delay = 0.05
        while True:
            claim = self._claimer.reserve(pending) if self._claimer is not None else None
            try:
                if claim is None:
                    written = await self._store.job_finish_many(pending, self._clock.now())
                else:
                    written, jobs = await self._store.job_finish_and_claim(pending, claim, self._clock.now())
            except Exception as exc:
                if claim is not None and self._claimer is not None:
                    self._claimer.claimed(claim, None)
                self._failing = True
                if self._give_up:
                    self._drop(len(pending), exc)
                    return None
                failures += 1
                if failures % ISOLATE_AFTER == 0:
                    # Maybe not an outage but one outcome the store refuses: find it, so that it cannot
                    # hold back the others (and their workers' slots) forever.
                    pending = await self._isolate(pending, applied)
                    if not pending:
                        return applied
                log.warning("could not record %d outcomes (retrying in %.1fs): %s", len(pending), delay, exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._failing = False
            if claim is not None and self._claimer is not None:
                self._claimer.claimed(claim, jobs)
            return applied | written

    async def _isolate(self, outcomes: list[Outcome], applied: set[int]) -> list[Outcome]:
        """Write outcomes one at a time; one the store refuses is recorded as a plain failure instead.
        Returns those that could not be written either way (the store is down: retry them later)."""
        left: list[Outcome] = []
        for outcome in outcomes:
            try:
                applied |= await self._store.job_finish_many([outcome], self._clock.now())
                continue
            except StoreError:
                # The database is unavailable (an outage, a restart), not refusing this outcome: writing it
                # as a failure now would fail a job that succeeded, if the server is back a moment later.
                left.append(outcome)
                continue
            except Exception as exc:
                ok = await self._write_as_failure(outcome, exc)
            if ok is None:
                left.append(outcome)
            elif ok:
                applied.add(outcome.job_id)
        return left

    async def _write_as_failure(self, outcome: Outcome, refused: Exception) -> bool | None:
        """Record `outcome` as a failure saying why the real one was refused; None if that fails too."""
        message = error_message(OutcomeNotRecorded(f"the store refused it: {error_message(refused)}"))
        failure = replace(outcome, kind=OutcomeKind.FAILED, result=None, run_at=None, error=message)
        try:
            applied = await self._store.job_finish_many([failure], self._clock.now())
        except Exception:
            return None
        log.error(
            "job %s: %s outcome not recorded, failed instead: %s", outcome.job_id, outcome.kind, message
        )
        return outcome.job_id in applied

    async def _retrying(
        self,
        count: int,
        write: Callable[[], Awaitable[T]],
        fallback: Callable[[Exception], Awaitable[T | None]] | None = None,
    ) -> T | None:
        delay = 0.05
        failures = 0
        while True:
            try:
                return await write()
            except Exception as exc:
                if self._give_up:
                    self._drop(count, exc)
                    return None
                failures += 1
                if fallback is not None and failures % ISOLATE_AFTER == 0:
                    result = await fallback(exc)
                    if result is not None:
                        return result
                log.warning("could not record %d outcomes (retrying in %.1fs): %s", count, delay, exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, RETRY_MAX_S)

    def _drop(self, count: int, exc: Exception) -> None:
        log.warning("dropping %d outcomes, the store fails: %s", count, exc)
        self._pending.clear()
        self._finalizers.clear()
        self._idle.set()


class OutcomeNotRecorded(Exception):
    """The store refused a job's outcome (e.g. a value the database cannot hold)."""
