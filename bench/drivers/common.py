"""Command-line plumbing shared by the drivers (standard library only: it runs in both venvs)."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence

DSN_ENV = "BENCH_DSN"  # postgresql://... for the PostgreSQL systems
DB_ENV = "BENCH_DB"  # a SQLite file path for the SQLite systems
CHUNK = 1_000  # jobs per bulk-enqueue call


def dsn() -> str:
    return os.environ[DSN_ENV]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup")
    enq = sub.add_parser("enqueue", help="bulk-enqueue N jobs in chunks; prints jobs/s as JSON")
    enq.add_argument("n", type=int)
    enq.add_argument("--single", action="store_true", help="one enqueue call per job")
    lat = sub.add_parser("latency", help="enqueue N jobs one by one, `interval` seconds apart")
    lat.add_argument("n", type=int)
    lat.add_argument("interval", type=float)
    lat.add_argument("--start", type=int, default=0)
    work = sub.add_parser("worker", help="run one worker process in the foreground")
    work.add_argument("--drain", action="store_true", help="exit once the queue is empty")
    return p


def emit(result: dict[str, float | int]) -> None:
    print(json.dumps(result), flush=True)


async def timed_chunks(n: int, chunk: int, send: Callable[[int, int], Awaitable[None]]) -> None:
    """Call `send(start, count)` for consecutive chunks and print the overall rate."""
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        await send(start, min(chunk, n - start))
    elapsed = time.perf_counter() - t0
    emit({"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed})


async def paced(
    n: int, interval: float, start: int, send_one: Callable[[int, float], Awaitable[None]]
) -> None:
    """Enqueue jobs start..start+n-1 one at a time on a fixed schedule; `ts` is read just before each call."""
    t0 = time.perf_counter()
    calls = []
    for k in range(n):
        delay = t0 + k * interval - time.perf_counter()
        if delay > 0:
            # a blocking sleep keeps the schedule tight; nothing else runs on this loop
            time.sleep(delay)  # noqa: ASYNC251
        before = time.perf_counter()
        await send_one(start + k, time.time())
        calls.append((time.perf_counter() - before) * 1000)
    calls.sort()
    emit(
        {
            "jobs": n,
            "enqueue_p50_ms": calls[len(calls) // 2],
            "enqueue_p99_ms": calls[int(0.99 * (len(calls) - 1))],
        }
    )


def ids(argv: Sequence[str]) -> list[str]:
    return list(argv)
