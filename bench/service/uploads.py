"""Upload → 202 for a 200 KB PDF on one `ingestq serve` process: a fixed offered rate (open loop) and
the max rate (closed loop), on each backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine
from bench.service import databases, procs

NAME = "pdf/pdfjs_wikipedia.pdf"  # 208 KB, text on every page


def pdf() -> Path:
    """The PDF from ../shared/corpora beside the checkout (or beside a parent folder: a git worktree), or
    from $BENCH_CORPORA."""
    if os.environ.get("BENCH_CORPORA"):
        return Path(os.environ["BENCH_CORPORA"]) / NAME
    for parent in Path(__file__).resolve().parents[2].parents:
        candidate = parent / "shared" / "corpora" / NAME
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{NAME} not found in any ../shared/corpora above this checkout")


REPEATS = 3
"""Each measurement is run this many times and the median run reported, the others beside it: on this
shared 2-core machine one 15 s window's p99 moved from 18 to 46 ms between runs of the same code."""


WARM = 2
"""Warm-up at the offered rate, in measurement windows (30 s): imports, connections, the first documents
and blobs, and on PostgreSQL a checkpoint's worth of WAL. A server fresh from initdb has no WAL segment to
recycle, so at 40 MB/s of blobs it zero-fills and syncs a new 16 MB segment every 0.4 s (waits
`WalInitWrite`, 40-70 ms each) until its first checkpoint (about 25 s at 200/s, max_wal_size 1 GB); a
server that has been running recycles its segments. With a 1 s warm-up the first window measured that."""


def measure(
    backend: str, rate: float, seconds: float, concurrency: int, log: Callable[[str], None]
) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "pdf_bytes": pdf().stat().st_size}
    with databases.fresh(backend, "uploads") as (url, _):
        server = procs.serve(url)
        try:
            endpoint = server.url + "/v1/documents"
            base = {"mode": "upload", "url": endpoint, "pdf": str(pdf())}
            procs.load({**base, "rate": rate, "seconds": WARM * seconds, "tag": "warm"})
            out["load_before"] = procs.loadavg()
            fixed = []
            for i in range(REPEATS):
                fixed.append(
                    _load_with_cpu(server, {**base, "rate": rate, "seconds": seconds, "tag": f"f{i}"})
                )
                log(f"uploads {backend} at {rate:g}/s, run {i + 1}: {_short(fixed[-1])}")
            out["fixed"] = _median(fixed, "p99_ms")
            out["fixed"]["offered_per_s"] = rate
            spec = {**base, "seconds": seconds, "concurrency": concurrency}
            most = []
            for i in range(REPEATS):
                most.append(_load_with_cpu(server, {**spec, "tag": f"m{i}"}))
                log(f"uploads {backend} max, {concurrency} in flight, run {i + 1}: {_short(most[-1])}")
            out["max"] = _median(most, "achieved_per_s")
            out["max"]["concurrency"] = concurrency
            out["load_after"] = procs.loadavg()
        finally:
            server.stop()
    return out


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median, with every run's `key` (in run order) as `runs`."""
    chosen = dict(sorted(runs, key=lambda r: float(r.get(key, 0.0)))[len(runs) // 2])
    chosen["runs"] = [round(float(r.get(key, 0.0)), 1) for r in runs]
    return chosen


def _load_with_cpu(server: procs.Proc, spec: dict[str, Any]) -> dict[str, Any]:
    """The load's result, with the server process's CPU per accepted upload: what decides the max rate
    on a machine whose cores the server shares with the client (and PostgreSQL)."""
    before = machine.tree_cpu_seconds(server.process.pid)
    result = procs.load(spec)
    spent = machine.tree_cpu_seconds(server.process.pid) - before
    result["server_cpu_ms_per_upload"] = 1000 * spent / max(result["ok"], 1)
    return result


def _short(r: dict[str, Any]) -> str:
    return (
        f"{r['achieved_per_s']:.0f}/s p50 {r.get('p50_ms', 0):.1f} ms p99 {r.get('p99_ms', 0):.1f} ms "
        f"statuses {r['statuses']}; CPU per upload: server {r['server_cpu_ms_per_upload']:.2f} ms, "
        f"client {r['client_cpu_ms_per_request']:.2f} ms"
    )
