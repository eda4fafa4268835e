"""Security headers on every answer of the service (API, health, metrics), as an ASGI middleware.

The API answers JSON, never a page, so its policy is the strictest there is: nothing may load, nothing
may frame it (`frame-ancestors 'none'`), no sniffing a JSON error into HTML, no Referer, and nothing
kept by a cache (answers hold jobs and documents of whoever holds a token). A header a route already
set wins: the dashboard sends its own policy (api/dashboard/render.py) and caches its static files.

The interactive API docs (`/docs`, `/redoc`) are FastAPI's pages, which load Swagger UI / ReDoc from a
CDN with an inline script; they get only `frame-ancestors 'none'` instead of the whole policy.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = "frame-ancestors 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _docs_paths(scope: Scope) -> set[str]:
    app = scope.get("app")
    root = scope.get("root_path", "")
    names = (getattr(app, "docs_url", None), getattr(app, "redoc_url", None), "/docs/oauth2-redirect")
    return {root + name for name in names if name}


class SecurityHeaders:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path", "") in _docs_paths(scope) else API_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (*HEADERS.items(), ("Content-Security-Policy", csp)):
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
