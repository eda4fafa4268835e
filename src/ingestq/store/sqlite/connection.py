"""Opening a SQLite database file with apsw: URL parsing, pragmas, and one-line errors."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import apsw

from ingestq.errors import ConfigError, StoreError

_PREFIX = "sqlite:///"
# apsw keeps this many prepared statements per connection; the store uses fewer than this.
STATEMENT_CACHE_SIZE = 200
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class BusyWait:
    """A busy handler: how a connection waits for another connection's write lock.

    SQLite's own (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries. Workers commit
    a batch every millisecond or two and hold the lock for about as long, so a writer that sleeps that
    coarsely keeps missing the gaps and can wait for seconds while others take turns. This one tries
    again after 0.1 ms, backing off to 2 ms, until `timeout_ms` has passed.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout = timeout_ms / 1000
        self.wait = True  # False: give up at once (SQLite then raises BusyError)
        self._since = 0.0

    def __call__(self, retries: int) -> bool:
        if not self.wait:
            return False
        now = time.monotonic()
        if retries == 0:
            self._since = now
        elif now - self._since >= self.timeout:
            return False
        time.sleep(0.0001 * 2 ** min(retries, 4) if retries < 5 else 0.002)
        return True


def parse_sqlite_url(url: str) -> Path:
    """`sqlite:///rel/path` → rel/path; `sqlite:////abs/path` → /abs/path."""
    if not url.startswith(_PREFIX):
        raise ConfigError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    raw = url[len(_PREFIX) :].split("?", 1)[0]
    if not raw or raw.endswith("/"):
        raise ConfigError(f"bad SQLite URL {url!r}: no file name")
    if raw == ":memory:":
        raise ConfigError(
            "an in-memory SQLite database cannot hold a durable queue shared by processes: use a file path"
        )
    return Path(raw)


def connect(
    path: Path,
    *,
    busy_timeout_ms: int,
    synchronous: Literal["NORMAL", "FULL"],
    readonly: bool = False,
) -> apsw.Connection:
    """Open `path` (creating it and its folder), switch to WAL and check that it is a SQLite database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise StoreError(f"cannot open {path}: it is a directory")
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    try:
        conn = apsw.Connection(str(path), flags=flags, statementcachesize=STATEMENT_CACHE_SIZE)
    except apsw.Error as exc:
        raise StoreError(f"cannot open {path}: {_reason(exc)}") from None
    try:
        conn.set_busy_handler(BusyWait(busy_timeout_ms))
        if not readonly:
            mode = conn.pragma("journal_mode", "wal")
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot use {path}: WAL journal mode refused (got {mode})")
            conn.pragma("synchronous", synchronous)
            conn.pragma("foreign_keys", True)
            # After a burst (a bulk enqueue) the WAL file is cut back to this size once checkpointed,
            # instead of keeping its peak size on disk.
            conn.pragma("journal_size_limit", WAL_SIZE_LIMIT)
        else:
            conn.pragma("schema_version")  # reads the header: fails now if this is not a database
    except apsw.NotADBError:
        conn.close()
        raise StoreError(f"{path} is not a SQLite database") from None
    except apsw.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {path}: {_reason(exc)}") from None
    return conn


def _reason(exc: apsw.Error) -> str:
    text = str(exc)
    # apsw prefixes messages with the exception class name ("CantOpenError: unable to open ...")
    _, _, tail = text.partition(": ")
    return (tail or text).splitlines()[0]
