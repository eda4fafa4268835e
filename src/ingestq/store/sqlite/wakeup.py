"""Cross-process wake-ups for SQLite: a cheap change check while somebody waits.

`PRAGMA data_version` changes on a connection whenever another connection commits. A thread with its
own connection reads it every few milliseconds, but only while a `wait_for_jobs` is pending: an idle
store with nobody waiting costs nothing, and a waiting one costs a few microseconds per check.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import apsw

from ingestq.errors import StoreError


class ChangeWatcher:
    def __init__(self, connect: Callable[[], apsw.Connection], interval: float) -> None:
        self._connect = connect
        self._interval = interval
        self._waiters = 0
        self._lock = threading.Lock()
        self._active = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_change: Callable[[], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]) -> None:
        self._loop, self._on_change = loop, on_change
        self._thread = threading.Thread(target=self._run, name="ingestq-sqlite-watch", daemon=True)
        self._thread.start()

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
        cursor: apsw.Cursor | None = None
        last: int | None = None
        try:
            while True:
                self._active.wait()
                if self._stopping.is_set():
                    return
                if conn is None or cursor is None:
                    try:
                        conn = self._connect()
                    except StoreError:
                        self._stopping.wait(self._interval * 20)
                        continue
                    cursor = conn.cursor()
                try:
                    version = int(cursor.execute("PRAGMA data_version").fetchall()[0][0])  # type: ignore[arg-type]
                except apsw.BusyError:
                    version = last if last is not None else 0
                # Also fires on the first check after a quiet spell if anything committed meanwhile:
                # a spurious wake costs one empty claim, a missed one costs a whole poll interval.
                if last is not None and version != last:
                    self._notify()
                last = version
                # time.sleep costs a third of the CPU of Event.wait(timeout) per call, which matters
                # at 100 checks a second; stop() is then noticed within one interval.
                time.sleep(self._interval)
        finally:
            if conn is not None:
                conn.close()
