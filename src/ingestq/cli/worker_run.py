"""Running `ingestq worker`, without Typer: the options, a parser for the usual command lines, and the
run itself. The Typer command (cli/worker.py) and the fast path of `ingestq` (cli/main.py) both call
`run_worker`.

Why a second parser: Typer builds its command tree and a pydantic TypeAdapter per option, and importing
Typer, Click and pydantic cost a worker more start-up CPU than the rest of its imports together
(tests/cli/test_worker_startup.py keeps them out).

Before its first claim, a worker that serves the `ingest` queue checks that it can ingest on this machine
(`Runtime.check_ingestion`: a parser process starts, the local model loads); if not, it prints one line,
`error: <cause>; <fix>`, and exits with status 3 (EXIT_UNAVAILABLE). A draining worker (`--once`) checks
only when ingestion jobs are queued, so draining plain jobs still loads no pipeline module.

Signals: the first SIGTERM/SIGINT stops claiming and lets in-flight jobs finish within the grace period,
then releases the rest to the queue; a second one cancels and releases them at once. Both exit 0: a
stopped worker is a normal event for a supervisor, not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingestq.errors import Unavailable
from ingestq.model.job import JobState
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.runtime import Runtime
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry
from ingestq.worker import Worker, WorkerConfig
from ingestq.worker.config import parse_queues

from .common import load_registry
from .failures import CliError, echo_err

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
"""The start-up check failed: this machine cannot ingest (see the one-line error)."""


@dataclass(frozen=True)
class WorkerOptions:
    """The worker command's options, however they were parsed (Typer, or `parse_fast` below)."""

    concurrency: int | None = None
    queues: str | None = None
    once: bool = False
    poll_interval: float | None = None
    lease: float | None = None
    app: str | None = None
    grace: float | None = None
    disable_ocr: bool = False
    http_port: int | None = None
    http_host: str | None = None


# Option -> (field, type, minimum): the same options and bounds as `worker_command`'s (a unit test
# compares them with the Typer command's parameters).
FAST_OPTIONS: dict[str, tuple[str, type, float | None]] = {
    "--concurrency": ("concurrency", int, 1),
    "-c": ("concurrency", int, 1),
    "--queues": ("queues", str, None),
    "-q": ("queues", str, None),
    "--once": ("once", bool, None),
    "--poll-interval": ("poll_interval", float, 0.01),
    "--lease": ("lease", float, 0.1),
    "--app": ("app", str, None),
    "-a": ("app", str, None),
    "--grace": ("grace", float, 0),
    "--disable-ocr": ("disable_ocr", bool, None),
    "--http-port": ("http_port", int, 0),
    "--http-host": ("http_host", str, None),
}


def parse_fast(argv: Sequence[str]) -> WorkerOptions | None:
    """Parse `worker` options without Typer, or None for anything unusual (help, a bad value, an option
    this parser does not know), which the Typer command then handles and reports.

    See the module's docstring for why."""
    values: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = FAST_OPTIONS.get(name)
        if spec is None:
            return None
        field, kind, minimum = spec
        if kind is bool:
            if eq:
                return None
            values[field] = True
            continue
        raw = inline if eq else next(args, None)
        if raw is None or (not eq and raw.startswith("-") and kind is str):
            return None
        try:
            value = kind(raw)
        except ValueError:
            return None
        if minimum is not None and value < minimum:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        values[field] = value
    return WorkerOptions(**values)


def run_worker(settings: Settings, options: WorkerOptions) -> None:
    try:
        registry = load_registry(options.app)
    except CliError as exc:
        echo_err(f"error: {exc}")
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # the module was found but running it failed (a bug in the user's code)
        detail = " ".join(str(exc).split())
        echo_err(f"error: --app {options.app!r}: importing it raised {type(exc).__name__}: {detail}")
        sys.exit(EXIT_USAGE)
    if options.disable_ocr:
        settings = settings.model_copy(update={"ocr": False})
    try:
        config = WorkerConfig.from_settings(
            settings,
            concurrency=options.concurrency,
            queues=parse_queues(options.queues),
            poll_interval=options.poll_interval,
            lease_seconds=options.lease,
            shutdown_grace=options.grace,
        )
    except ValueError as exc:
        echo_err(f"error: {exc}")
        sys.exit(EXIT_USAGE)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint = None
    if options.http_port is not None:
        endpoint = (options.http_host or "127.0.0.1", options.http_port)
    try:
        asyncio.run(_serve(settings, registry, config, drain=options.once, endpoint=endpoint))
    except CliError as exc:
        echo_err(f"error: {exc}")
        sys.exit(EXIT_USAGE)


async def _serve(
    settings: Settings,
    registry: Registry | None,
    config: WorkerConfig,
    *,
    drain: bool,
    endpoint: tuple[str, int] | None = None,
) -> None:
    # the pipeline is imported by the start-up check, or on the first ingestion job
    unavailable: str | None = None
    worker: Worker | None = None
    async with await Runtime.open(settings, registry) as runtime:
        if await _needs_ingestion_check(runtime, config, drain=drain):
            try:
                if not await _check_unless_stopped(runtime):
                    echo_err("ingestq worker stopped before its first claim")
                    return
            except Unavailable as exc:
                unavailable = exc.reason
        if unavailable is None:
            worker = await _run(runtime, config, drain=drain, endpoint=endpoint)
    if unavailable is not None:
        echo_err(f"error: {unavailable}")
        sys.exit(EXIT_UNAVAILABLE)
    if worker is not None and worker.abandoned_threads:
        # The interpreter would join the worker's job threads at exit, i.e. wait for sync handlers that were
        # told to stop but cannot be interrupted. Their jobs are already back in the queue and the store
        # is closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def _check_unless_stopped(runtime: Runtime) -> bool:
    """Run the start-up check (loading the model can take seconds); False if SIGTERM or SIGINT came first.
    A supervisor that stops a starting worker gets exit 0, as for a running one: nothing was claimed."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = () if sys.platform == "win32" else (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    check = asyncio.create_task(runtime.check_ingestion())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({check, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        stopped.cancel()
    if not check.done():
        check.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await check
        return False
    check.result()  # raises Unavailable
    return True


async def _needs_ingestion_check(runtime: Runtime, config: WorkerConfig, *, drain: bool) -> bool:
    """Whether this worker serves ingestion and may claim an ingestion job: it serves the `ingest` queue
    and, when draining, ingestion jobs are queued."""
    if config.queues is not None and INGEST_QUEUE not in config.queues:
        return False
    if not drain:
        return True
    for queue in await runtime.store.stats(runtime.client.clock.now()):
        if queue.queue == INGEST_QUEUE and queue.counts.get(JobState.QUEUED, 0):
            return True
    return False


async def _run(
    runtime: Runtime, config: WorkerConfig, *, drain: bool, endpoint: tuple[str, int] | None
) -> Worker:
    worker = runtime.worker(config)
    store = runtime.store
    _install_signal_handlers(worker)
    endpoints = None
    if endpoint is not None:
        from ingestq.worker.http import WorkerEndpoints  # only workers that serve them load prometheus
        from ingestq.worker.metrics import WorkerMetrics

        worker.metrics = WorkerMetrics()
        endpoints = WorkerEndpoints(worker, worker.metrics)
        host, port = endpoint
        try:
            port = await endpoints.start(host, port)
        except OSError as exc:
            raise CliError(f"--http-port {port}: cannot listen on {host}: {exc.strerror or exc}") from None
        echo_err(f"serving /healthz, /readyz and /metrics on http://{host}:{port}")
    queues = ",".join(config.queues) if config.queues else "all"
    kinds = len(worker.registry.kinds())
    echo_err(
        f"ingestq worker {worker.worker_id} started: {store.backend}, "
        f"concurrency {config.concurrency}, queues {queues}, {kinds} kinds" + (", draining" if drain else "")
    )
    try:
        await worker.run(drain=drain)
    finally:
        if endpoints is not None:
            await endpoints.close()
    done = ", ".join(f"{n} {kind}" for kind, n in sorted(worker.counts.items())) or "no jobs"
    echo_err(f"ingestq worker {worker.worker_id} stopped: {done}")
    return worker


def _install_signal_handlers(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        graceful = received == 1
        name = signal.Signals(signum).name
        if graceful:
            echo_err(
                f"{name}: finishing in-flight jobs (up to {worker.config.shutdown_grace:g}s); "
                "send again to stop now"
            )
        else:
            echo_err(f"{name}: stopping now, releasing in-flight jobs")
        worker.request_stop(graceful=graceful)

    if sys.platform == "win32":  # no loop signal handlers there; Ctrl-C still raises KeyboardInterrupt
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
