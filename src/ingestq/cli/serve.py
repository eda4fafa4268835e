"""`ingestq serve [--host H] [--port P] [--app M] [--with-worker] [--log-level L]`: the HTTP service
(FastAPI on uvicorn).

`--app` names the application's tasks, as for `ingestq worker`: the API enqueues only kinds it knows.
Every log handler gets a filter that keeps tokens out of the logs (api/log_redaction.py), at any level."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from .common import APP_HELP, load_registry, settings_of
from .errors import CliError


class LogLevel(enum.StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


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
    log_level: Annotated[
        LogLevel,
        typer.Option("--log-level", help="uvicorn's and ingestq's log level (trace: every ASGI message)."),
    ] = LogLevel.info,
) -> None:
    """Serve the HTTP API, health checks and metrics."""
    import logging

    import uvicorn

    from ingestq.api import log_redaction
    from ingestq.api.app import create_app
    from ingestq.api.auth import Tokens, check_exposure
    from ingestq.errors import ConfigError

    settings = settings_of(ctx)
    secret = settings.api_tokens
    try:
        tokens = Tokens.parse(secret.get_secret_value() if secret is not None else None)
        check_exposure(host, tokens)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    registry = load_registry(app_module)
    app = create_app(settings, registry, with_worker=with_worker)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level.value, proxy_headers=False, server_header=False
    )  # configures uvicorn's loggers: the redaction below goes onto their handlers
    if not logging.getLogger().handlers:  # ingestq's own records, at the same level
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ingestq").setLevel(logging.getLogger("uvicorn").level)
    log_redaction.install(token.decode() for _, token in tokens.entries)
    uvicorn.Server(config).run()
