"""The dashboard `ingestq serve` mounts at `/dashboard`: server-rendered pages (Jinja2, vendored htmx,
no build step, no network at run time), signed-cookie sessions, CSRF and same-origin checks on every
POST, a read-only mode. A host application adds it with `app.include_router(dashboard_router)`."""

from __future__ import annotations

from fastapi import APIRouter

from ingestq.api.dashboard.routes import dashboard_router
from ingestq.api.dashboard.webhooks import webhook_pages


def _mount(router: APIRouter, pages: APIRouter) -> None:
    """Add `pages` to `router` ahead of its last route, the catch-all 404 page (routes match in order)."""
    catch_all = router.routes.pop()
    router.include_router(pages)
    router.routes.append(catch_all)


_mount(dashboard_router, webhook_pages)

__all__ = ["dashboard_router"]
