"""The one workload every system runs, with no dependency beyond the standard library.

A job carries `i` (the benchmark's own id, 0..N-1) and `ts` (wall time just before the enqueue call).
Running it appends one line "<i> <ts> <start ts> <pid>" to the file named by BENCH_OUT, opened with
O_APPEND so that lines from concurrent processes never interleave.
"""

from __future__ import annotations

import os
import time

OUT_ENV = "BENCH_OUT"


def record(i: int, ts: float) -> None:
    start = time.time()
    line = f"{i} {ts:.6f} {start:.6f} {os.getpid()}\n".encode()
    fd = os.open(os.environ[OUT_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def payloads(n: int, start: int = 0) -> list[dict[str, float | int]]:
    """Payloads for jobs start..start+n-1; `ts` is taken now, just before the caller enqueues them."""
    now = time.time()
    return [{"i": i, "ts": now} for i in range(start, start + n)]
