"""The dashboard `ingestq serve` mounts at `/dashboard`: server-rendered pages (Jinja2, vendored htmx,
no build step, no network at run time), signed-cookie sessions, CSRF and same-origin checks on every
POST, a read-only mode. A host application adds it with `app.include_router(dashboard_router)`."""

from __future__ import annotations

from fastapi import APIRouter

from ingestq.api.dashboard.purge import purge_router
from ingestq.api.dashboard.routes import dashboard_router as _pages
from ingestq.api.dashboard.webhooks import webhook_pages
from ingestq.api.dashboard.workers import workers_router

dashboard_router = APIRouter()
# Page modules first: the pages router ends with `/jobs/{job_id}` and a catch-all 404 that would
# otherwise answer their paths.
dashboard_router.include_router(workers_router)
dashboard_router.include_router(purge_router)
dashboard_router.include_router(webhook_pages)
dashboard_router.include_router(_pages)

__all__ = ["dashboard_router"]
