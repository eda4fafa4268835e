"""Point reads of a SqliteStore on the event loop's own thread, on a connection of their own.

A status poll (`GET /v1/documents/...`, `GET /v1/jobs/{id}`) is two or three reads of one row by key,
each well under a millisecond. On the store's thread each one waits behind whatever that thread runs
(an upload's blob write, an index commit queued before it, a write waiting out another process's lock)
and costs two thread switches; on a 2-core machine where a worker's model holds both cores, every
switch is a wait for the scheduler. Measured with `python -m bench.service --sections polls`, that
made the SQLite status-poll p99 about twice PostgreSQL's.

So those reads run here instead: on a second connection with `query_only` set, directly on the calling
thread, with no busy wait. In WAL mode a reader never waits for a writer, and it sees every transaction
committed before it starts, so a read after an awaited write on the store's thread sees that write. The
rare case where the read cannot run at once (another thread is using this connection, or SQLite
answers busy during WAL recovery) goes to the store's thread as before. Only bounded reads by key come
here: a list or a search could hold the loop for milliseconds and stays on the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import apsw

from ingestq.errors import WriterBusy
from ingestq.store.sqlite.connection import BusyWait
from ingestq.store.sqlite.engine import Engine

if TYPE_CHECKING:
    from ingestq.store.sqlite.index_engine import IndexEngine

R = TypeVar("R")


class PointReader:
    def __init__(self, conn: apsw.Connection, label: str) -> None:
        conn.pragma("query_only", True)
        never_wait = BusyWait(0)
        never_wait.wait = False
        conn.set_busy_handler(never_wait)
        self.engine = Engine(conn, label)
        self._index: IndexEngine | None = None
        # apsw refuses one connection used by two threads at once; whoever cannot take this at once
        # reads on the store's thread instead.
        self._in_use = threading.Lock()

    @property
    def has_index(self) -> bool:
        return self._index is not None

    def load_index(self) -> None:
        """Load sqlite-vec into this connection (imports numpy): call it off the loop, on the thread."""
        from ingestq.store.sqlite.index_engine import IndexEngine

        with self._in_use:
            if self._index is None:
                self._index = IndexEngine(self.engine)

    def try_read(self, call: Callable[[Engine], R]) -> tuple[bool, R | None]:
        """(True, result) if `call` ran here; (False, None) if it must go to the store's thread."""
        if not self._in_use.acquire(blocking=False):
            return False, None
        try:
            return True, call(self.engine)
        except WriterBusy:
            return False, None
        finally:
            self._in_use.release()

    def try_index_read(self, call: Callable[[IndexEngine], R]) -> tuple[bool, R | None]:
        index = self._index
        if index is None:
            return False, None
        return self.try_read(lambda _engine: call(index))

    def close(self) -> None:
        with self._in_use:
            self.engine.close()
