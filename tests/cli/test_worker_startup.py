"""`ingestq worker` starts without the heavy imports it does not need (start-up is part of every
throughput figure), and its fast command-line path accepts exactly what the Typer command accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingestq.cli.app import load_command
from ingestq.cli.ingestion import LazyIngestion
from ingestq.cli.main import fast_worker
from ingestq.cli.worker import FAST_OPTIONS, WorkerOptions, parse_fast
from ingestq.settings import Settings

# Modules a worker that runs plain jobs must not load before its first job: each costs tens of
# milliseconds of CPU (pydantic: Typer's per-option adapters and the pipeline's configuration).
HEAVY = (
    "pydantic",
    "pydantic_settings",
    "rich",
    "numpy",
    "torch",
    "sentence_transformers",
    "httpx",
    "croniter",
    "sqlite_vec",
    "ingestq.pipeline",
    "typer",
    # A few milliseconds each, which add up (building dataclasses and protocols, and compiling the source
    # where no bytecode is cached): the blocking client; the document model and index engine (documents only);
    # importlib.resources (with tempfile, shutil, zipfile and the compression modules behind it); the store
    # protocols (annotations only) and periodic schedules.
    "ingestq.client.sync",
    "ingestq.model.document",
    "ingestq.store.sqlite.index_engine",
    "ingestq.store.vectors",
    "importlib.resources",
    "ingestq.store.base",
    "ingestq.tasks.periodic",
)

_PROBE = """
import atexit, json, sys
heavy = json.loads(sys.argv[1])
def report():
    loaded = [m for m in heavy if m in sys.modules]
    kinds = sorted(k for k in sys.modules if k.startswith("ingestq.cli."))
    sys.stderr.write("\\nPROBE " + json.dumps({"loaded": loaded, "cli": kinds}) + "\\n")
atexit.register(report)
sys.argv = ["ingestq", "--db", sys.argv[2], "worker", "--once", "--concurrency", "2"]
from ingestq.cli.main import main
main()
"""


def _probe(url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stopped: no jobs" in proc.stderr, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PROBE "))
    found: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return found


def test_a_draining_worker_imports_nothing_heavy(tmp_path: Path) -> None:
    found = _probe(f"sqlite:///{tmp_path / 'q.db'}")
    assert found["loaded"] == []
    # only the worker command's modules: no other command, no Rich rendering
    assert set(found["cli"]) == {
        "ingestq.cli.main",
        "ingestq.cli.failures",
        "ingestq.cli.common",
        "ingestq.cli.worker_run",
        "ingestq.cli.ingestion",
    }


def test_the_fast_path_knows_every_option_of_the_typer_command() -> None:
    command = load_command("worker")
    typer_options: dict[str, tuple[str, Any]] = {}
    for param in command.params:
        minimum = getattr(param, "min", None)
        for opt in param.opts:
            typer_options[opt] = (param.name, minimum)
    fast = {opt: (field, minimum) for opt, (field, _, minimum) in FAST_OPTIONS.items()}
    typer_options.pop("--help", None)
    assert fast == typer_options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], WorkerOptions()),
        (["--once", "-c", "50"], WorkerOptions(once=True, concurrency=50)),
        (
            ["--queues=a,b", "--poll-interval", "0.5", "--lease", "3", "-a", "m:r", "--grace", "0"],
            WorkerOptions(queues="a,b", poll_interval=0.5, lease=3.0, app="m:r", grace=0.0),
        ),
        (["--disable-ocr", "--concurrency=2"], WorkerOptions(disable_ocr=True, concurrency=2)),
    ],
)
def test_fast_parse(argv: list[str], expected: WorkerOptions) -> None:
    assert parse_fast(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-c", "0"],
        ["-c", "many"],
        ["-c"],
        ["--grace", "-1"],
        ["--poll-interval", "nan"],
        ["--once=yes"],
        ["--unknown"],
        ["extra"],
    ],
)
def test_anything_unusual_goes_to_typer(argv: list[str]) -> None:
    assert parse_fast(argv) is None
    assert fast_worker(["worker", *argv]) is None


def test_global_options_before_the_fast_worker() -> None:
    assert fast_worker(["--db", "sqlite:///x.db", "--no-migrate", "worker", "--once"]) is not None
    assert fast_worker(["--db=sqlite:///x.db", "worker"]) is not None
    assert fast_worker(["--version", "worker"]) is None
    assert fast_worker(["stats"]) is None
    assert fast_worker([]) is None


def _spec_fields(registry: Any) -> dict[str, tuple[Any, ...]]:
    return {
        kind: (
            s.queue,
            s.priority,
            s.max_attempts,
            s.backoff_base,
            s.backoff_max,
            s.timeout,
            s.wants_ctx,
            s.is_async,
            tuple(__import__("inspect").signature(s.fn).parameters),
        )
        for kind, s in registry.tasks.items()
    }


async def test_lazy_ingestion_registers_the_pipeline_kinds_as_the_pipeline_does(
    tmp_path: Path,
) -> None:
    from ingestq.pipeline.ingest import IngestRuntime
    from ingestq.store import open_store

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")
    store = open_store(settings)
    lazy = LazyIngestion(store, settings)
    async with IngestRuntime(store, settings) as runtime:
        assert _spec_fields(lazy.registry()) == _spec_fields(runtime.registry())
    assert not lazy.loaded
