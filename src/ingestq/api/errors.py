"""One JSON error shape for every route, whatever went wrong:

    {"error": {"status": 404, "code": "not_found", "message": "job 7 not found"}}

(`details` is added for validation errors: where and what.) Routes use `ShapedRoute`, which turns
ingestq's errors, FastAPI's validation errors and anything unexpected into that shape inside the route
itself, so a host application that mounts the router gets it without installing handlers. A client's
mistake is a 4xx with a one-line message; a database that is away is a 503 with Retry-After; anything
else is a 500 whose message says nothing about the internals (the log has the traceback).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ingestq.client.documents import DocumentNotFound, ModelMismatch
from ingestq.errors import (
    ConfigError,
    DeliveryNotFound,
    FeatureUnavailable,
    IngestqError,
    InvalidJobState,
    InvalidPayload,
    JobNotFound,
    QueueFull,
    SchemaError,
    StoreError,
    UnknownJobKind,
)
from ingestq.pipeline.sources import SourceError

log = logging.getLogger("ingestq.api")

STORE_RETRY_AFTER = 5  # seconds a client should wait when the database is away


class ApiError(Exception):
    """An error a route raises on purpose, with its status and code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_BY_TYPE: tuple[tuple[type[Exception], int, str], ...] = (
    (JobNotFound, 404, "not_found"),
    (DocumentNotFound, 404, "not_found"),
    (DeliveryNotFound, 404, "not_found"),
    (InvalidJobState, 409, "conflict"),
    (ModelMismatch, 409, "conflict"),
    (UnknownJobKind, 422, "unknown_kind"),
    (InvalidPayload, 422, "invalid_payload"),
    (SourceError, 422, "invalid_source"),
    (FeatureUnavailable, 501, "not_implemented"),
    (SchemaError, 503, "schema"),
    (StoreError, 503, "unavailable"),
    (ConfigError, 500, "config"),
)


def to_response(exc: Exception) -> Response:
    """The shaped response for `exc` (what every route returns instead of raising)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, RequestValidationError):
        details = [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", details=details)
    if isinstance(exc, HTTPException):
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, _code_for(exc.status_code), str(exc.detail), headers)
    if isinstance(exc, QueueFull):
        retry = str(max(1, math.ceil(exc.retry_after)))
        return error_response(429, "queue_full", str(exc), {"Retry-After": retry})
    for kind, status, code in _BY_TYPE:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(STORE_RETRY_AFTER)} if status == 503 else None
            if status >= 500:
                log.warning("%s: %s", code, exc)
            return error_response(status, code, str(exc), headers)
    if isinstance(exc, IngestqError):
        return error_response(400, "bad_request", str(exc))
    log.exception("unexpected error: %s", exc)
    return error_response(500, "internal", "internal error (see the server's log)")


def _code_for(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        422: "invalid_request",
        429: "too_many_requests",
        503: "unavailable",
    }.get(status, "error")


class ShapedRoute(APIRoute):
    """An APIRoute whose errors leave as `to_response` shapes them (validation errors included)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return to_response(exc)

        return shaped
