"""The application factory, the lifespan that opens the service's runtime, and the router.

`create_app()` is what `ingestq serve` runs. A host application mounts `router` and passes
`ingestq_lifespan()` to its own FastAPI (see the package's docstring). With `with_worker=True` the
process also runs a worker (a laptop or a single container on the embedded SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from ingestq import __version__
from ingestq.api.admission import InFlight
from ingestq.api.auth import Tokens
from ingestq.api.auth_failures import AuthFailures
from ingestq.api.dashboard import dashboard_router
from ingestq.api.errors import to_response
from ingestq.api.events.stream import close_feed
from ingestq.api.headers import SecurityHeaders
from ingestq.api.limits import BodyLimit
from ingestq.api.routes import documents, events, health, jobs, process, queues, webhooks
from ingestq.api.state import STATE_KEY, ServiceState
from ingestq.runtime import Runtime
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry
from ingestq.worker import Worker

log = logging.getLogger("ingestq.api")

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def build_router() -> APIRouter:
    """Every route of the service: health and metrics at the root, the API under /v1."""
    root = APIRouter()
    root.include_router(health.router)
    v1 = APIRouter(prefix="/v1")
    for module in _v1_modules():
        v1.include_router(module.router)
    root.include_router(v1)
    return root


def _v1_modules() -> list[Any]:
    return [jobs, queues, process, documents, events, webhooks]


router = build_router()


def ingestq_lifespan(
    settings: Settings | None = None, registry: Registry | None = None, *, with_worker: bool = False
) -> Lifespan:
    """A FastAPI lifespan that opens ingestq's runtime (store, client, registry) before the first request
    and closes it at shutdown; with `with_worker`, a worker runs in this process meanwhile."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings()
        secret = resolved.api_tokens
        tokens = Tokens.parse(secret.get_secret_value() if secret is not None else None)
        async with await Runtime.open(resolved, registry) as runtime:
            failures = AuthFailures(resolved.auth_max_failures, resolved.auth_failure_window)
            uploads = InFlight(resolved.uploads_in_flight)
            setattr(app.state, STATE_KEY, ServiceState(runtime, tokens, failures, uploads))
            worker: Worker | None = runtime.worker() if with_worker else None
            task = asyncio.create_task(worker.run(), name="ingestq-worker") if worker else None
            try:
                yield
            finally:
                await close_feed(app)  # event streams end before the runtime they read closes
                if worker is not None and task is not None:
                    worker.request_stop(graceful=True)
                    await task
                delattr(app.state, STATE_KEY)

    return lifespan


def create_app(
    settings: Settings | None = None, registry: Registry | None = None, *, with_worker: bool = False
) -> FastAPI:
    app = FastAPI(
        title="ingestq",
        version=__version__,
        summary="Durable ingestion queue for documents: parse, chunk, embed and index.",
        lifespan=ingestq_lifespan(settings, registry, with_worker=with_worker),
    )
    app.include_router(router)
    app.include_router(dashboard_router)
    install_error_handlers(app)
    app.add_middleware(BodyLimit)  # 413 before a large JSON or form body is read (api/limits.py)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, a 413 included
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Errors raised outside the routes (unknown paths, wrong methods) in the routes' JSON shape."""

    async def shaped(request: Request, exc: Exception) -> Response:
        return to_response(exc)

    app.add_exception_handler(StarletteHTTPException, shaped)
    app.add_exception_handler(RequestValidationError, shaped)
