"""Cross-process wake-ups for SQLite: a cheap change check while somebody waits.

`PRAGMA data_version` changes on a connection whenever another connection commits. A thread with its
own connection reads it every few milliseconds, but only while a `wait_for_jobs` is pending: an idle
store with nobody waiting costs nothing, and a waiting one costs a few microseconds per check.

The interval adapts: short while commits keep arriving (a busy queue, where pickup latency matters),
longer after a quiet spell (an idle worker, whose cost is all wake-ups). The first change after a quiet
spell is seen within the longer interval; the ones after it within the short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import apsw

from ingestq.errors import StoreError

QUIET_AFTER = 0.25  # seconds without a change before the watcher slows down
IDLE_INTERVAL = 0.020  # seconds between checks once quiet


class ChangeWatcher:
    def __init__(
        self, connect: Callable[[], apsw.Connection], interval: float, idle_interval: float = IDLE_INTERVAL
    ) -> None:
        self._connect = connect
        self._interval = interval
        self._idle_interval = max(interval, idle_interval)
        self._waiters = 0
        self._lock = threading.Lock()
        self._active = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_change: Callable[[], None] | None = None
        self._primed = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]) -> None:
        """Start watching; returns once the first reading is taken (blocking: call it off the loop)."""
        self._loop, self._on_change = loop, on_change
        self._thread = threading.Thread(target=self._run, name="ingestq-sqlite-watch", daemon=True)
        self._thread.start()
        self._primed.wait(timeout=30)

    def stop(self) -> None:
        self._stopping.set()
        self._active.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def acquire(self) -> None:
        with self._lock:
            self._waiters += 1
            self._active.set()

    def release(self) -> None:
        with self._lock:
            self._waiters -= 1
            if self._waiters == 0:
                self._active.clear()

    def _notify(self) -> None:
        if self._loop is None or self._on_change is None:
            return
        # RuntimeError: the loop closed under us, so nobody is waiting any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_change)

    def _run(self) -> None:
        conn: apsw.Connection | None = None
        last: int | None = None
        last_change = time.monotonic()
        try:
            while not self._stopping.is_set():
                if conn is None:
                    try:
                        conn = self._connect()
                    except StoreError:
                        self._primed.set()  # the store's own connection reports the problem
                        time.sleep(self._interval * 20)
                        continue
                try:
                    version = _data_version(conn)
                except apsw.Error:  # e.g. the file went away: reconnect, and wake the waiter to find out
                    conn.close()
                    conn, last = None, None
                    self._notify()
                    continue
                # The first reading is taken at start, so a commit made before the first wait (between a
                # worker's empty claim and its wait) is seen. After a quiet spell the first check fires
                # if anything committed meanwhile: a spurious wake costs one empty claim, a missed one a
                # whole poll interval.
                if last is not None and version != last:
                    self._notify()
                    last_change = time.monotonic()
                last = version
                self._primed.set()
                if not self._active.is_set():
                    self._active.wait()
                    last_change = time.monotonic()  # a new waiter: start attentive
                    continue
                quiet = time.monotonic() - last_change > QUIET_AFTER
                # time.sleep costs a third of the CPU of Event.wait(timeout) per call, which matters
                # at 100 checks a second; stop() is then noticed within one interval.
                time.sleep(self._idle_interval if quiet else self._interval)
        finally:
            if conn is not None:
                conn.close()


def _data_version(conn: apsw.Connection) -> int:
    rows: list[Any] = conn.execute("PRAGMA data_version").fetchall()
    return int(rows[0][0])


FEED_INTERVAL = 0.020  # seconds between a change feed's checks: events need not beat a worker's pickup


class WatcherWaiter:
    """A change waiter over a watcher of its own (store.change_waiter): one thread and connection per
    feed, not per subscriber, checking only while the feed waits."""

    def __init__(self, connect: Callable[[], apsw.Connection], interval: float = FEED_INTERVAL) -> None:
        self._watcher = ChangeWatcher(connect, interval, interval)
        self._changed = asyncio.Event()
        self._started = False

    async def wait(self, max_wait: float) -> bool:
        if not self._started:
            self._started = True
            await asyncio.to_thread(self._watcher.start, asyncio.get_running_loop(), self._changed.set)
        if not self._changed.is_set() and max_wait > 0:
            self._watcher.acquire()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), max_wait)
            finally:
                self._watcher.release()
        fired = self._changed.is_set()
        self._changed.clear()
        return fired

    async def close(self) -> None:
        if self._started:
            await asyncio.to_thread(self._watcher.stop)
            self._started = False
