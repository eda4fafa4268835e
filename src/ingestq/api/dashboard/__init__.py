"""The dashboard `ingestq serve` mounts at `/dashboard`: server-rendered pages (Jinja2, vendored htmx,
no build step, no network at run time), signed-cookie sessions, CSRF and same-origin checks on every
POST, a read-only mode. A host application adds it with `app.include_router(dashboard_router)`."""

from __future__ import annotations

from ingestq.api.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
