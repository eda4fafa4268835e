"""One change feed per process: it watches the jobs table and fans events out to every SSE stream.

The feed never makes the queue's hot path pay for events: claims and finishes write nothing for it. It
diffs successive answers of `store.job_watch` (new jobs, running jobs, recent finishes: indexed reads)
against what it saw before, and numbers what changed. It looks when the store's change waiter fires
(SQLite: any commit by any process; PostgreSQL: inserts and re-queues, which NOTIFY) and at least every
`poll_interval` while anybody subscribes (claims, finishes and progress on PostgreSQL send no NOTIFY).

Events live in one ring buffer; a subscriber is a cursor into it, so fan-out is one wake-up of the
streams that wait, and a reconnect resumes from its `Last-Event-ID` as long as that id is still in the
buffer (`buffer` events, and the feed keeps looking for `linger` seconds after its last subscriber left).
An id from another process, or from before the window, gets a `reset` event: re-read, then follow.

Known limits, for the sake of a hot path without extra writes: a job inserted by a PostgreSQL
transaction that commits after a later id was seen is not announced as queued (its first event is
`running`); a person's retry of a failed or cancelled job (back to `queued`) is told when a worker
claims it, as `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestq.clock import Clock
from ingestq.errors import StoreError
from ingestq.model.job import FINISHED_STATES, Job, JobFilter, JobState
from ingestq.store import Store

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
"""Seconds between looks while somebody subscribes (PostgreSQL claims and finishes do not notify). A look
is a few index probes (under 0.1 ms on PostgreSQL with 200k finished rows), so 20 a second cost little."""
BUFFER = 10_000  # events kept for resume
LINGER = 120.0  # seconds the feed keeps watching after its last subscriber left (the resume window)
WATCH_LIMIT = 2_000  # rows per part of one look
KNOWN_MAX = 100_000
"""Unfinished jobs the feed remembers. Beyond it, newly queued jobs are announced but not remembered: their
next step is then told as seen then (a `running` event), without the between-looks synthesis."""
FINISH_MARGIN = timedelta(seconds=2)
"""How far back each look re-reads finished jobs, behind the newest `finished_at` it saw: a worker stamps
`finished_at` before its commit, so a finish may become visible after a later-stamped one."""


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    name: str  # "job" (a state change) or "progress"
    job_id: int
    queue: str
    kind: str
    collection: str | None
    data: str  # the JSON the stream sends
    frame: str  # the whole SSE frame, formatted once for every stream


@dataclass(frozen=True, slots=True)
class Seen:
    state: JobState
    attempt: int
    cancel_requested: bool
    progress: tuple[str, int, int | None] | None


def _seen(job: Job) -> Seen:
    p = job.progress
    return Seen(job.state, job.attempt, job.cancel_requested, (p.stage, p.done, p.total) if p else None)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


class JobFeed:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        poll_interval: float = POLL_INTERVAL,
        buffer: int = BUFFER,
        linger: float = LINGER,
    ) -> None:
        self._store = store
        self._clock = clock
        self._poll = poll_interval
        self._linger = linger
        self.epoch = secrets.token_hex(4)
        """Names this process's numbering: ids from elsewhere cannot be resumed here."""
        self._events: deque[Event] = deque(maxlen=buffer)
        self._next_seq = 1
        self._changed = asyncio.Event()
        self._known: dict[int, Seen] = {}
        self._finished: dict[int, datetime] = {}  # finishes already told, within the re-read margin
        self._after_id = 0
        self._finished_since: datetime | None = None
        self._subscribers = 0
        self._last_left = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._primed = asyncio.Event()

    # --- subscribers ---------------------------------------------------------------------------------
    @property
    def subscribers(self) -> int:
        return self._subscribers

    async def subscribe(self) -> int:
        """Count a stream in, start watching if needed, and return the seq it follows from (exclusive)."""
        self._subscribers += 1
        self._loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._primed.clear()
            self._task = asyncio.create_task(self._run(), name="ingestq-event-feed")
        # the first look sets the baseline; events start after it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._primed.wait(), 10)
        return self._next_seq - 1

    def unsubscribe(self) -> None:
        self._subscribers -= 1
        if self._subscribers == 0:
            self._last_left = time.monotonic()

    def parse_id(self, text: str | None) -> int | None:
        """The seq of an event id of this process (`<epoch>-<seq>`), else None."""
        if not text:
            return None
        epoch, _, seq = text.strip().partition("-")
        if epoch != self.epoch or not seq.isdigit() or len(seq) > 18:
            return None
        return int(seq)

    def event_id(self, event: Event) -> str:
        return f"{self.epoch}-{event.seq}"

    def resumable(self, seq: int) -> bool:
        """Whether every event after `seq` is still in the buffer (and `seq` is one this feed issued)."""
        if seq >= self._next_seq:
            return False
        oldest = self._events[0].seq if self._events else self._next_seq
        return seq >= oldest - 1

    def after(self, seq: int) -> list[Event]:
        if not self._events or seq >= self._events[-1].seq:
            return []
        start = max(0, seq + 1 - self._events[0].seq)
        return [self._events[i] for i in range(start, len(self._events))]

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    async def wait_after(self, seq: int, max_wait: float) -> None:
        """Return once there are events after `seq`, the feed closes, or `max_wait` seconds pass."""
        if self._closing or self.last_seq > seq:
            return
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max_wait)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def closing(self) -> bool:
        """Streams should say goodbye and end: the server is shutting down."""
        return self._closing

    def begin_close(self) -> None:
        """Ask every stream to end; callable from a signal handler (the wake-up goes through the loop)."""
        self._closing = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing waits
                self._loop.call_soon_threadsafe(self._wake_streams)

    async def close(self) -> None:
        """Stop watching and wake every stream, which then ends (server shutdown)."""
        self._closed = self._closing = True
        self._wake_streams()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- watching ------------------------------------------------------------------------------------
    def _wake_streams(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        waiter = self._store.change_waiter()
        baseline = True
        try:
            while not self._closed:
                idle = not baseline and self._subscribers == 0
                if idle and time.monotonic() - self._last_left > self._linger:
                    self._forget()
                    break  # nobody to serve and the resume window passed: stop costing anything
                try:
                    if not baseline:
                        await waiter.wait(self._poll)
                    await self.look(baseline=baseline)
                    baseline = False
                except StoreError as exc:  # a database blip: keep the streams, look again later
                    log.warning("ingestq event feed could not read the jobs (%s); retrying", exc)
                    await asyncio.sleep(self._poll * 10)
                self._primed.set()
        finally:
            self._primed.set()
            await waiter.close()

    def _forget(self) -> None:
        """Stop watching (synchronously, so that a stream arriving meanwhile starts a new watch). What
        happened while nobody watched is unknown, so the buffered ids must not resume: a new epoch."""
        self._task = None
        self._known.clear()
        self._finished.clear()
        self._events.clear()
        self._after_id = 0
        self._finished_since = None
        self.epoch = secrets.token_hex(4)

    async def look(self, baseline: bool = False) -> None:
        """One look at the jobs: number and publish what changed since the last. The run loop calls it;
        a test calls it to step a feed that has no subscriber, deterministically."""
        now = self._clock.now()
        if self._finished_since is None:
            self._finished_since = now - FINISH_MARGIN
        if baseline and self._after_id == 0:
            self._after_id = await self._max_id()
        rows = await self._store.job_watch(self._after_id, self._finished_since, WATCH_LIMIT)
        emitted: list[Event] = []
        newest_finish = self._finished_since + FINISH_MARGIN
        seen_up_to = self._after_id
        for job in rows:
            self._after_id = max(self._after_id, job.id)
            if job.state in FINISHED_STATES and job.finished_at is not None:
                newest_finish = max(newest_finish, job.finished_at)
            emitted.extend(self._take(job, now, baseline, new=job.id > seen_up_to))
        emitted.extend(await self._requeued({job.id for job in rows}, now, baseline))
        self._finished_since = newest_finish - FINISH_MARGIN
        for job_id, at in list(self._finished.items()):
            if at < self._finished_since:
                del self._finished[job_id]
        if emitted:
            self._wake_streams()

    def _take(self, job: Job, now: datetime, baseline: bool, new: bool = False) -> list[Event]:
        """The events for one row; a finish re-read within the margin is told once."""
        if job.state in FINISHED_STATES:
            if job.id in self._finished:
                self._known.pop(job.id, None)
                return []
            self._finished[job.id] = job.finished_at or now
        return self._diff(job, baseline, new)

    async def _requeued(self, present: set[int], now: datetime, baseline: bool) -> list[Event]:
        """Running jobs that left the running set without a recent finish: re-queued (retry, release,
        rescue), finished long ago by the clock of a skewed worker, or deleted. Read each (few)."""
        out: list[Event] = []
        for job_id, seen in list(self._known.items()):
            if seen.state is not JobState.RUNNING or job_id in present:
                continue
            found = await self._store.job_get(job_id)
            if found is None:
                del self._known[job_id]
            else:
                out.extend(self._take(found, now, baseline))
        return out

    async def _max_id(self) -> int:
        """Where new jobs start for a fresh feed: jobs queued before it are not announced."""
        latest = await self._store.job_list(JobFilter(limit=1))
        return latest[0].id if latest else 0

    def _diff(self, job: Job, baseline: bool, new: bool = False) -> list[Event]:
        now = _seen(job)
        before = self._known.get(job.id)
        if job.state in FINISHED_STATES:
            self._known.pop(job.id, None)
        elif job.state is not JobState.QUEUED or len(self._known) < KNOWN_MAX or before is not None:
            self._known[job.id] = now
        if baseline:
            return []
        out: list[Event] = []
        if before is None and new:
            # a job inserted since the last look was queued first, whatever state it has reached by now
            out.append(self._publish("job", job, JobState.QUEUED))
            before = Seen(JobState.QUEUED, 0, False, None)
        if before == now:
            return out
        ran_unseen = before is not None and before.state is JobState.QUEUED and job.state in FINISHED_STATES
        if ran_unseen and job.started_at is not None:
            # it ran and finished between two looks: tell the running step too, in order
            out.append(self._publish("job", job, JobState.RUNNING))
        if before is None or before.state is not now.state or before.attempt != now.attempt:
            out.append(self._publish("job", job, job.state))
        elif before.progress != now.progress or before.cancel_requested != now.cancel_requested:
            out.append(self._publish("progress", job, job.state))
        return out

    def snapshot(self, job: Job, at: int) -> str:
        """A `job` frame of the job as it is now, with the id of position `at`, for one stream only (it
        is not in the buffer): what a one-job stream starts with, so that following a job that has
        already finished, or that changes rarely, shows its state at once."""
        data = self._body(job, job.state)
        return f"id: {self.epoch}-{at}\nevent: job\ndata: {data}\n\n"

    def _publish(self, name: str, job: Job, state: JobState) -> Event:
        """An event for `job` in `state`: its present state, or an earlier one it passed between looks
        (queued: attempt 0 and no progress; running: no finish)."""
        data = self._body(job, state)
        payload = job.payload if isinstance(job.payload, dict) else {}
        found = payload.get("collection")
        event = Event(
            seq=self._next_seq,
            name=name,
            job_id=job.id,
            queue=job.queue,
            kind=job.kind,
            collection=found if isinstance(found, str) else None,
            data=data,
            frame=f"id: {self.epoch}-{self._next_seq}\nevent: {name}\ndata: {data}\n\n",
        )
        self._next_seq += 1
        self._events.append(event)
        return event

    @staticmethod
    def _body(job: Job, state: JobState) -> str:
        earlier_queued = state is JobState.QUEUED and job.state is not JobState.QUEUED
        progress = None if earlier_queued else job.progress
        payload = job.payload if isinstance(job.payload, dict) else {}
        found = payload.get("collection")
        collection = found if isinstance(found, str) else None
        body = {
            "job_id": job.id,
            "state": state.value,
            "queue": job.queue,
            "kind": job.kind,
            "attempt": 0 if earlier_queued else job.attempt,
            "document_id": job.document_id,
            "collection": collection,
            "cancel_requested": job.cancel_requested,
            "progress": None
            if progress is None
            else {"stage": progress.stage, "done": progress.done, "total": progress.total},
            "error": job.last_error if state is JobState.FAILED else None,
            "started_at": None if earlier_queued else _iso(job.started_at),
            "finished_at": _iso(job.finished_at) if state in FINISHED_STATES else None,
        }
        return json.dumps(body, separators=(",", ":"))
