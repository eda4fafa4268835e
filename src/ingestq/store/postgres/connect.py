"""Connection settings and one-line connection errors for the PostgreSQL backend."""

from __future__ import annotations

import re
import select
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ingestq.errors import ConfigError, StoreError

CONNECT_TIMEOUT_S = 5
"""libpq's connect_timeout (its minimum is 2 s): an unreachable host fails in seconds, not minutes."""

TCP_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

# Session settings of the store's own connections (set at connection start-up: no extra round trip).
# - TimeZone=UTC: psycopg returns datetime.UTC-aware values, which the rest of ingestq compares with its
#   own UTC datetimes, and to_jsonb(timestamptz) writes ISO strings with +00:00.
# - enable_sort / enable_bitmapscan off: every ingestq query is meant to walk a (partial) index in order,
#   and the claim must stop after `limit` entries of the claim index. Right after a burst of enqueues the
#   statistics are stale (autovacuum has not analysed the table yet) and the planner, believing a handful
#   of queued rows, picks a bitmap scan that sorts every queued row: measured 140 ms instead of 0.9 ms per
#   claim with 100,000 queued jobs. Setting them per claim (SET LOCAL) cost a transaction block per claim,
#   about a third slower. Aggregates and hash joins are unaffected, and a query with no other plan still
#   sorts (the settings only penalise, they never forbid).
# - jit=off: that penalty inflates the estimated cost of any statement that still sorts past
#   jit_above_cost, and PostgreSQL then JIT-compiles it on every call (measured ~0.3 s per enqueue before
#   the enqueue statements lost their ORDER BY). ingestq's statements are short OLTP statements that JIT
#   never pays back, so it is off for the store's sessions.
SESSION_OPTIONS = "-c TimeZone=UTC -c enable_sort=off -c enable_bitmapscan=off -c jit=off"

# Set before the caller's options, so that a `-c backend_flush_after=...` in the URL's options wins.
# Uploads write their bytes into the blobs table: 40 MB/s at 200 uploads/s of 200 KB. With PostgreSQL's
# default (0: never hint) the backends leave those pages to the kernel, which holds up to ~900 MB dirty
# and then writes it back in one burst; every commit's WAL flush waits behind the burst: 0.2-0.5 s stalls
# every 10-25 s, the whole p99 of uploads (bench/service). 256kB has each backend ask the kernel to write
# its pages back as it goes (as the checkpointer and bgwriter do by default on Linux): dirty data stayed
# near 130 MB and no commit waited more than 70 ms in the same insert loop (docs/deployment.md).
FLUSH_OPTIONS = "-c backend_flush_after=256kB"


def normalise_url(url: str) -> str:
    """libpq accepts both schemes; `postgres://` is rewritten only so that one spelling reaches it."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if not url.startswith("postgresql://"):
        raise ConfigError(f"not a PostgreSQL URL: {redact(url)!r}")
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid PostgreSQL URL {redact(url)!r}: {first_line(str(exc))}") from None
    return url


def connect_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect: the caller's options are kept, ours are added."""
    params = conninfo_to_dict(url)
    options = str(params.get("options") or "")
    kwargs: dict[str, Any] = {
        "options": " ".join(o for o in (FLUSH_OPTIONS, options, SESSION_OPTIONS) if o),
        "application_name": str(params.get("application_name") or "ingestq"),
    }
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    # TCP keepalives: a peer that vanished without closing the socket (a cut network, a dead VM) is
    # noticed within about a minute instead of the kernel's two hours, so the listener and pooled
    # connections reconnect. libpq ignores them on unix sockets.
    for key, value in TCP_KEEPALIVES.items():
        kwargs.setdefault(key, params.get(key, value))
    return kwargs


def redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def where(url: str) -> str:
    """`host:port` (or the socket directory) the URL points at, for error messages."""
    params = conninfo_to_dict(url)
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    if host.startswith("/"):
        return f"{host} (unix socket, port {port})"
    return f"{host}:{port}"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else text


def describe_connect_error(url: str, exc: BaseException) -> str:
    """Turn libpq's multi-line message into one line that says where and why."""
    reason = _reason(str(exc))
    return f"cannot connect to PostgreSQL at {where(url)}: {reason}"


_KNOWN = (
    (re.compile(r"connection refused", re.I), "connection refused (is the server running?)"),
    (re.compile(r"timeout expired|timed out", re.I), "timed out"),
    (re.compile(r"password authentication failed for user \"([^\"]*)\"", re.I), None),
    (re.compile(r"database \"([^\"]*)\" does not exist", re.I), None),
    (re.compile(r"role \"([^\"]*)\" does not exist", re.I), None),
    (re.compile(r"no such file or directory", re.I), "no server listening on that socket"),
    (re.compile(r"could not translate host name \"([^\"]*)\"", re.I), None),
)


def _reason(message: str) -> str:
    for pattern, text in _KNOWN:
        match = pattern.search(message)
        if match:
            return text or match.group(0)
    # libpq prefixes lines with "connection failed:", "FATAL:" and tabs; keep the last informative part
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = lines[0] if lines else "unknown error"
    line = re.sub(r"^(connection failed:\s*)?", "", line)
    line = re.sub(r"^connection to server .*? failed:\s*", "", line)
    line = re.sub(r"^(FATAL|ERROR):\s*", "", line)
    return line


def store_error(url: str, exc: BaseException) -> StoreError:
    return StoreError(describe_connect_error(url, exc))


async def check_idle_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's checkout check, without a round trip in the common case.

    An idle connection has nothing to read. When the server restarts or a backend is terminated, the
    server sends a FATAL message and closes the socket, so the socket becomes readable: only then is
    the connection tested with a real query (and discarded by the pool if it fails). A checkout costs a
    zero-timeout select() instead of an empty query per batch.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        await conn.execute("")
