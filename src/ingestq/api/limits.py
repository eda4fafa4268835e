"""A cap on request bodies (JSON, forms): 413 before a large body is read, as an ASGI middleware.

FastAPI reads a whole JSON body into memory before a route (or any dependency) runs, so a client could
make the service hold gigabytes for one `POST /v1/jobs`. This middleware sits in front of the routes:

- a `Content-Length` above the cap is answered 413 at once, before a byte of the body is read;
- a body without one (chunked) is counted as it arrives; the moment it passes the cap the 413 goes out,
  and the application is told the client went away, so it stops reading and whatever it answers then
  is dropped.

The cap is `Settings.api_json_max_bytes` (INGESTQ_API_JSON_MAX_BYTES, 1 MiB by default). Two kinds of
request are left to their own, larger caps (INGESTQ_UPLOAD_MAX_BYTES, counted while they stream, see
api/uploads.py): multipart uploads, and `POST .../v1/documents`, whose JSON may carry a document's text.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingestq.api.errors import error_response
from ingestq.api.state import STATE_KEY

DEFAULT_CAP = 1024**2
_OWN_CAPS = ("/v1/documents",)  # routes that read their body under INGESTQ_UPLOAD_MAX_BYTES themselves


def _cap(scope: Scope) -> int:
    state = getattr(getattr(scope.get("app"), "state", None), STATE_KEY, None)
    if state is None:
        return DEFAULT_CAP
    cap: int = state.runtime.settings.api_json_max_bytes
    return cap


def _exempt(scope: Scope, headers: Headers) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return True
    path: str = scope.get("path", "")
    return scope.get("method") == "POST" and path.rstrip("/").endswith(_OWN_CAPS)


def _too_large(cap: int) -> ASGIApp:
    return error_response(
        413,
        "too_large",
        f"the request body is over the {cap} byte limit (INGESTQ_API_JSON_MAX_BYTES)",
        {"Connection": "close"},
    )


class BodyLimit:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _exempt(scope, headers):
            await self.app(scope, receive, send)
            return
        cap = _cap(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await _too_large(cap)(scope, receive, send)
            return
        received = 0
        started = False
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] != "http.request" or refused:
                return message
            received += len(message.get("body", b""))
            if received > cap:
                refused = True
                if not started:
                    await _too_large(cap)(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; what the application answers to the "disconnect" is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
