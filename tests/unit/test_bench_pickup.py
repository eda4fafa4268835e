"""The pickup figure of `make bench`: several runs of a system pooled into one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.harness import pooled_pickup


def _run(latencies: list[float], idle: float, problem: str = "") -> dict[str, Any]:
    return {
        "system": "s",
        "backend": "b",
        "jobs": len(latencies),
        "interval_ms": 20.0,
        "latencies_ms": sorted(latencies),
        "idle_cpu_pct": idle,
        "enqueue_p50_ms": idle,
        "enqueue_p99_ms": idle * 2,
        "problem": problem,
        "load_before": (0.1, 0.1, 0.1),
        "load_after": (0.2, 0.2, 0.2),
    }


def test_percentiles_are_taken_over_every_job_of_the_good_runs() -> None:
    fast = _run([1.0] * 99 + [9.0], idle=1.0)  # on its own: p99 9.0
    slow = _run([1.0] + [2.0] * 99, idle=3.0)
    broken = _run([500.0] * 100, idle=50.0, problem="only 100 of 200 latency jobs ran")
    pooled = pooled_pickup([fast, slow, broken])
    assert (pooled["runs"], pooled["jobs"]) == (2, 200)
    assert pooled["p50_ms"] == 1.5
    assert pooled["p99_ms"] == 2.0  # the one slow job of 200 is past the 99th percentile
    assert pooled["max_ms"] == 9.0
    assert (pooled["idle_cpu_pct"], pooled["enqueue_p99_ms"]) == (2.0, 4.0)  # medians of the runs
    assert pooled["problem"] == "1 of 3 runs failed and are left out"
    assert (pooled["load_before"], pooled["load_after"]) == (fast["load_before"], slow["load_after"])


def test_with_no_good_run_the_last_run_says_what_went_wrong() -> None:
    broken = _run([], idle=0.0, problem="worker never ran")
    assert pooled_pickup([broken]) is broken
