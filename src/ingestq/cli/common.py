"""What the commands share: the Settings in the context, running a coroutine with a connected Client,
loading the user's task registry from `--app`, and the consoles."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ingestq.client.client import Client
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry, default_registry
from ingestq.tasks.task import TaskSpec

from .failures import CliError

if TYPE_CHECKING:
    import typer
    from rich.console import Console

    from ingestq.runtime import Runtime

T = TypeVar("T")

_console: Console | None = None


def __getattr__(name: str) -> Console:
    # `console` is built on first use: importing Rich is a measurable part of a worker's start-up, and
    # the worker never prints through it.
    global _console
    if name != "console":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False)
        if not _console.is_terminal:
            # Piped output (grep, less, files): Rich would cut tables at 80 columns; keep rows whole.
            _console.width = max(_console.width, 160)
    return _console


APP_HELP = "Your tasks: `package.module` (tasks registered with @ingestq.task) or `module:registry`."


def settings_from_flags(db: str | None, no_migrate: bool) -> Settings:
    """The global options as Settings: flags become init overrides, which win over the environment
    (Settings is its only reader)."""
    overrides: dict[str, Any] = {}
    if db is not None:
        overrides["database_url"] = db
    if no_migrate:
        overrides["auto_migrate"] = False
    return Settings(**overrides)


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, Settings):  # a command invoked without the root callback (tests)
        obj = Settings()
        root.obj = obj
    return obj


def with_client(
    ctx: typer.Context,
    action: Callable[[Client], Awaitable[T]],
    *,
    registry: Registry | None = None,
    check_schema: bool = True,
    auto_migrate: bool | None = None,
) -> T:
    """Run `action` with a client connected per the context's Settings (`auto_migrate` overrides)."""
    settings = settings_of(ctx)
    if auto_migrate is not None:
        settings = settings.model_copy(update={"auto_migrate": auto_migrate})

    async def run() -> T:
        client = await Client.connect(settings, registry=registry, check_schema=check_schema)
        async with client:
            return await action(client)

    return asyncio.run(run())


def with_runtime(ctx: typer.Context, action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `action` with a runtime (client, registry, ingestion resources) per the context's Settings."""
    from ingestq.runtime import Runtime  # the commands that need no worker do not load it

    async def run() -> T:
        async with await Runtime.open(settings_of(ctx)) as runtime:
            return await action(runtime)

    return asyncio.run(run())


def load_registry(app: str | None) -> Registry | None:
    """`--app module` imports the module (its @ingestq.task functions land in the default registry);
    `--app module:object` also takes `object`, a Registry or a single task."""
    if not app:
        return None
    module_name, _, attr = app.partition(":")
    if not module_name:
        raise CliError(f"--app {app!r}: expected module or module:object")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current directory are importable
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--app {app!r}: cannot import {module_name!r} ({exc})") from None
    if not attr:
        return default_registry
    obj: Any = getattr(module, attr, None)
    if isinstance(obj, Registry):
        return obj
    if isinstance(obj, TaskSpec):
        registry = Registry()
        registry.register(obj)
        return registry
    raise CliError(f"--app {app!r}: {attr!r} in {module_name!r} is not a Registry or a task")


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout (no Rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
