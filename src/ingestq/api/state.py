"""What a request handler reaches: the service's runtime (client, registry, settings) and its tokens.

The runtime is opened once per process by the lifespan (`ingestq_lifespan`) and kept on the
application's state; handlers get it through the `get_runtime` / `get_client` dependencies, so a host
application that mounts the router uses the very same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ingestq.api.admission import InFlight
from ingestq.api.auth import Role, Tokens
from ingestq.api.auth_failures import AuthFailures
from ingestq.api.errors import ApiError
from ingestq.client.client import Client
from ingestq.runtime import Runtime


@dataclass
class ServiceState:
    runtime: Runtime
    tokens: Tokens
    failures: AuthFailures
    uploads: InFlight


STATE_KEY = "ingestq"


def service_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, STATE_KEY, None)
    if state is None:
        raise RuntimeError(
            "ingestq is not started on this application: pass lifespan=ingestq_lifespan() to FastAPI"
        )
    return state


# The dependencies are coroutines although they never wait: FastAPI runs a plain `def` dependency on its
# thread pool, two thread switches per dependency per request (9% of an upload's CPU on the event loop).


async def get_runtime(request: Request) -> Runtime:
    return service_state(request).runtime


async def get_client(request: Request) -> Client:
    return service_state(request).runtime.client


IngestqRuntime = Annotated[Runtime, Depends(get_runtime)]
IngestqClient = Annotated[Client, Depends(get_client)]


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def refuse_if_locked_out(state: ServiceState, address: str | None) -> None:
    """429 for an address that presented too many wrong tokens lately (see api/auth_failures.py)."""
    wait = state.failures.retry_after(address)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_failed_attempts",
            f"too many wrong tokens from this address: try again in {wait} s",
            {"Retry-After": str(wait)},
        )


def _role(request: Request) -> Role:
    state = service_state(request)
    presented = _presented_token(request)
    address = client_address(request)
    if presented is not None:  # no token is no guess: only presented ones count and get refused
        refuse_if_locked_out(state, address)
    role = state.tokens.role_of(presented)
    if role is None:
        if presented is not None:
            state.failures.failed(address)
        raise ApiError(
            401, "unauthorized", "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    return role


async def require_read(request: Request) -> Role:
    return _role(request)


async def require_admin(request: Request) -> Role:
    role = _role(request)
    if role < Role.ADMIN:
        raise ApiError(403, "forbidden", "this token may only read")
    return role


Reader = Depends(require_read)
Admin = Depends(require_admin)
