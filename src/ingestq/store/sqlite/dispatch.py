"""Where a SqliteStore's statements run: on the store's own thread, or for the worker's hot path on the
event loop's thread itself.

apsw is synchronous, so the store owns one thread that runs every statement (`run`) and the event loop
never waits on SQLite. That hand-off has a price on the worker's hot path: a claim-and-finish
transaction costs ~1 ms of CPU per 100 jobs, and passing it to the thread and its result back costs
more than that again (futures, the loop's self-pipe, a second core fighting the first for the GIL and
for the cache lines of the jobs it built). `run_hot` therefore runs such a transaction directly on the
calling thread, but only when doing so cannot stall the loop:

- the connection is free (no statement of the thread's in progress; a lock says who holds it),
- the write lock is free at once (busy timeout 0 for that attempt: a writer elsewhere sends the call to
  the thread, which waits for it with the configured busy timeout),
- commits do not fsync (synchronous=NORMAL; under FULL every commit waits on the disk, so the thread),
- and no checkpoint runs inside it: this connection's WAL hook replaces SQLite's auto-checkpoint and
  has the thread checkpoint instead, once per CHECKPOINT_PAGES new WAL pages.

The work is the same either way, and so is every transaction; only the thread that runs it differs.

The thread takes urgent calls first (`run_urgent`): a worker's heartbeat, which keeps its jobs' leases,
must not wait behind the bulk writes queued before it (a document's index commit, embedding-cache
writes); when it did, leases expired under load and healthy workers lost their own jobs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

import apsw

from ingestq.errors import StoreError, WriterBusy
from ingestq.store.sqlite.connection import BusyWait

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("ingestq.store")

# WAL pages after which the thread checkpoints (SQLite's own auto-checkpoint threshold).
CHECKPOINT_PAGES = 1000


class Lanes:
    """One thread that runs calls in submission order, urgent calls before the others."""

    def __init__(self, name: str) -> None:
        self._ready = threading.Condition()
        self._urgent: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._normal: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], R], *, urgent: bool = False) -> Future[R]:
        future: Future[R] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the store's thread is stopped")
            (self._urgent if urgent else self._normal).append((future, call))
            self._ready.notify()
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop once every call already submitted has run."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._urgent and not self._normal and not self._closed:
                    self._ready.wait()
                if self._urgent:
                    future, call = self._urgent.popleft()
                elif self._normal:
                    future, call = self._normal.popleft()
                else:
                    return  # closed, nothing left
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)


class Dispatch:
    def __init__(self, label: str, busy_timeout_ms: int, inline: bool) -> None:
        self._label = label
        self._inline = inline
        self._executor: Lanes | None = Lanes("ingestq-sqlite")
        self._conn: apsw.Connection | None = None
        self._busy = BusyWait(busy_timeout_ms)
        self._holder = threading.Lock()  # held by whoever is using the connection right now
        self._checkpoint_due = False
        self._wal_mark = 0  # WAL frames when the last checkpoint was asked for

    def attach(self, conn: apsw.Connection) -> None:
        """Take over checkpointing of `conn` (see the module docstring). Call it on the thread."""
        self._conn = conn
        conn.set_busy_handler(self._busy)
        conn.set_wal_hook(self._on_wal)

    def _on_wal(self, _conn: apsw.Connection, _db: str, frames: int) -> int:
        # Called inside a commit with the WAL's size: only note it, the checkpoint runs after the call.
        # Once per CHECKPOINT_PAGES new frames: while other processes keep the WAL from being rewound
        # (readers still on it), "over the threshold" would hold on every commit after the first.
        if frames < self._wal_mark:
            self._wal_mark = 0  # rewound: a checkpoint completed and a writer started over
        if frames - self._wal_mark >= CHECKPOINT_PAGES:
            self._wal_mark = frames
            self._checkpoint_due = True
        return int(apsw.SQLITE_OK)

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on the store's thread."""
        return await self._submit(False, functools.partial(fn, *args, **kwargs))

    async def run_urgent(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on the store's thread, before the calls already waiting there."""
        return await self._submit(True, functools.partial(fn, *args, **kwargs))

    async def _submit(self, urgent: bool, call: Callable[[], R]) -> R:
        if self._executor is None:
            raise StoreError(f"{self._label} is closed")
        return await asyncio.wrap_future(
            self._executor.submit(functools.partial(self._held, call), urgent=urgent)
        )

    async def run_hot(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on the calling thread if that cannot stall it (see the module docstring),
        else on the store's thread. `fn` must be one write transaction that a busy write lock stops before
        it changes anything (it raises WriterBusy then)."""
        if self._inline and self._conn is not None and self._holder.acquire(blocking=False):
            try:
                self._busy.wait = False
                try:
                    result = fn(*args, **kwargs)
                except WriterBusy:
                    pass  # another writer holds the lock: wait for it on the thread, below
                else:
                    if self._checkpoint_due:
                        self._checkpoint_later()
                    return result
                finally:
                    self._busy.wait = True
            finally:
                self._holder.release()
        return await self.run(fn, *args, **kwargs)

    def _held(self, call: Callable[[], R]) -> R:
        with self._holder:
            try:
                return call()
            finally:
                if self._checkpoint_due:
                    self._checkpoint()

    def _checkpoint_later(self) -> None:
        if self._executor is not None:
            self._executor.submit(functools.partial(self._held, lambda: None))  # it checkpoints when done

    def _checkpoint(self) -> None:
        self._checkpoint_due = False
        if self._conn is None:
            return
        try:
            # PASSIVE, as SQLite's auto-checkpoint: copies what no reader still needs, never waits.
            self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.BusyError:
            # Another process is checkpointing this WAL right now: that checkpoint does the same work.
            # Workers sharing one file meet like this dozens of times an hour; it is not worth a warning.
            log.debug("%s: WAL checkpoint skipped: another connection is checkpointing", self._label)
        except apsw.Error as exc:  # the next commit over the threshold tries again
            log.warning("%s: WAL checkpoint failed: %s", self._label, exc)

    async def close(self, finish: Callable[[], None]) -> None:
        """Run `finish` (closing the connection) on the thread, then stop the thread."""
        executor = self._executor
        if executor is None:
            return

        def detach_and_finish() -> None:
            self._conn = None  # no checkpoint after this: the connection is closing
            self._checkpoint_due = False
            finish()

        try:
            await self.run(detach_and_finish)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    def shutdown_now(self) -> None:
        """After a failed open: stop the thread without waiting."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
