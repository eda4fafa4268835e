"""`ingestq serve [--host H] [--port P] [--app M] [--with-worker]`: the HTTP service (FastAPI on uvicorn).

`--app` names the application's tasks, as for `ingestq worker`: the API enqueues only kinds it knows."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import APP_HELP, load_registry, settings_of
from .errors import CliError


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind (non-loopback needs a token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 8000,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a worker in this process (one-box setups).")
    ] = False,
    app_module: Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)] = None,
) -> None:
    """Serve the HTTP API, health checks and metrics."""
    from ingestq.api.app import create_app
    from ingestq.api.auth import Tokens, check_exposure
    from ingestq.errors import ConfigError

    settings = settings_of(ctx)
    secret = settings.api_tokens
    try:
        check_exposure(host, Tokens.parse(secret.get_secret_value() if secret is not None else None))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    registry = load_registry(app_module)
    app = create_app(settings, registry, with_worker=with_worker)
    from ingestq.api.events.shutdown import serve  # ends event streams at SIGTERM, unlike uvicorn.run

    serve(app, host, port, log_level="info", proxy_headers=False, server_header=False)
