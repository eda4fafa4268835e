"""The Workers page: every live worker (host, pid, queues, slots busy of total, heartbeat age, why it
stopped claiming some kinds, started at), and apart from them the recently dead ones: workers silent
for longer than their lease (their jobs are up for rescue), kept by the store until ten leases passed.

Read-only: no form, nothing to guard. The live part refreshes like the other `_*_live.html` partials
(`hx-trigger="ingestq:tick from:body"`, whatever fires that tick)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingestq.api.dashboard.routes import DashboardRoute, _client, _render, _viewer
from ingestq.model.job import WorkerInfo

workers_router = APIRouter(prefix="/dashboard", route_class=DashboardRoute, include_in_schema=False)


@dataclass(frozen=True)
class WorkerRow:
    info: WorkerInfo
    silent: float  # seconds since its last heartbeat

    @property
    def meter(self) -> int:
        """Tenths of its slots busy (0..10), for the CSS meter classes (no inline style under the CSP)."""
        return min(10, self.info.running * 10 // max(self.info.concurrency, 1))


async def _context(request: Request) -> dict[str, Any]:
    client = _client(request)
    now: datetime = client.clock.now()
    rows = [WorkerRow(w, w.silent_for(now)) for w in await client.workers()]
    live = sorted((r for r in rows if r.info.alive(now)), key=lambda r: (r.info.hostname, r.info.pid))
    dead = sorted((r for r in rows if not r.info.alive(now)), key=lambda r: r.silent)
    return {
        "live": live,
        "dead": dead,
        "slots": sum(r.info.concurrency for r in live),
        "busy": sum(r.info.running for r in live),
    }


@workers_router.get("/workers", name="dashboard_workers")
async def workers_page(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "workers.html", viewer, page="workers", **await _context(request))


@workers_router.get("/fragments/workers")
async def workers_fragment(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "_workers_live.html", viewer, **await _context(request))
