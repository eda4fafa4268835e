"""`/metrics`, the dashboard overview, the jobs list (API and dashboard) with 10k, 100k and 1M finished
jobs: one `ingestq serve` process, the history grown between measurements by bench/flat.py's bulk SQL
(copies of one queued row moved to `succeeded`, as the finished-count bookkeeping expects), never by
running the jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import flat
from bench.service import databases, procs
from ingestq.errors import FeatureUnavailable
from ingestq.model.job import NewJob
from ingestq.settings import Settings
from ingestq.store import open_store

ENDPOINTS = {
    "/metrics": "/metrics",
    "overview page": "/dashboard/",
    "GET /v1/jobs": "/v1/jobs",
    "GET /v1/jobs?state=failed": "/v1/jobs?state=failed",
    "jobs page": "/dashboard/jobs",
    "jobs page, failed": "/dashboard/jobs?state=failed",
}
SIZES = (10_000, 100_000, 1_000_000)


async def _template(url: str) -> None:
    """The queued row the bulk fill copies (it stays queued: a live queue beside the history)."""
    store = open_store(Settings(database_url=url))
    await store.open()
    try:
        with contextlib.suppress(FeatureUnavailable):
            await store.migrate()
        await store.job_insert_many([NewJob(kind="bench.flat", payload={"k": 0})], datetime.now(UTC))
    finally:
        await store.close()


def measure(
    backend: str, sizes: tuple[int, ...], requests: int, log: Callable[[str], None]
) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "sizes": list(sizes), "requests": requests, "by_size": {}}
    with databases.fresh(backend, "flat") as (url, path):
        asyncio.run(_template(url))
        server = procs.serve(url)
        try:
            have = 0
            for size in sizes:
                if path:
                    flat.add_finished_sqlite(path, size - have)
                else:
                    flat.add_finished_pg(url, size - have)
                have = size
                row: dict[str, Any] = {"load_before": procs.loadavg()}
                for label, path_q in ENDPOINTS.items():
                    spec = {"mode": "poll", "url": server.url, "paths": [path_q], "rate": 10, "seconds": 1}
                    procs.load(spec)  # warm (caches, prepared statements)
                    spec.update(rate=requests / 5, seconds=5)
                    row[label] = procs.load(spec)
                    del row[label]["answers"]
                row["load_after"] = procs.loadavg()
                out["by_size"][str(size)] = row
                log(
                    f"flat {backend} {size:,}: "
                    + ", ".join(
                        f"{k} p50 {row[k]['p50_ms']:.1f} p99 {row[k]['p99_ms']:.1f}" for k in ENDPOINTS
                    )
                )
        finally:
            server.stop()
    return out
