"""Server-Sent Events in `make bench`: bench/sse.py's measurement (200 `/v1/events` subscribers on one
`ingestq serve` process; latency from a job's state change to its event, goal p99 ≤ 250 ms) on a fresh
database of each backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import sse
from bench.service import databases


def measure(backend: str, subscribers: int, jobs: int, log: Callable[[str], None]) -> dict[str, Any]:
    with databases.fresh(backend, "sse") as (url, _):
        result = sse.measure(backend, url, backend, subscribers, jobs)
    log(
        f"sse {backend}, {subscribers} subscribers: p50 {result.p50_ms} ms p99 {result.p99_ms} ms, "
        f"{result.samples} samples, {result.missing} missing"
    )
    return {**result.__dict__, "goal_p99_ms": sse.GOAL_P99_MS, "meets_goal": result.meets_goal}
