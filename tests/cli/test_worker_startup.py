"""`ingestq worker` starts without the heavy imports it does not need (start-up is part of every
throughput figure), and its fast command-line path accepts exactly what the Typer command accepts."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingestq.cli.app import load_command
from ingestq.cli.main import fast_worker
from ingestq.cli.worker import FAST_OPTIONS, WorkerOptions, parse_fast
from ingestq.runtime import LazyIngestion
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
    # the pipeline's modules, but for the ingestion kinds' declaration (pipeline/ingest/kinds.py and the
    # two empty package modules above it)
    "ingestq.pipeline.ingest.runtime",
    "ingestq.pipeline.config",
    "ingestq.pipeline.sandbox",
    "ingestq.pipeline.parse",
    "ingestq.pipeline.embed",
    "ingestq.pipeline.chunk",
    "ingestq.pipeline.sources",
    "ingestq.pipeline.model",
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


def _spec_fields(registry: Any) -> dict[str, dict[str, Any]]:
    """Every field of every TaskSpec (the handler by its parameters): a field added to TaskSpec is
    compared without anyone remembering to add it here."""
    specs: dict[str, dict[str, Any]] = {}
    for kind, spec in registry.tasks.items():
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
        fields["fn"] = tuple(inspect.signature(spec.fn).parameters)
        specs[kind] = fields
    return specs


async def test_lazy_ingestion_registers_the_pipeline_kinds_as_the_pipeline_does(
    tmp_path: Path,
) -> None:
    from ingestq.pipeline.ingest.runtime import IngestRuntime
    from ingestq.store import open_store

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")
    store = open_store(settings)
    lazy = LazyIngestion(store, settings)
    async with IngestRuntime(store, settings) as runtime:
        assert _spec_fields(lazy.registry()) == _spec_fields(runtime.registry())
    assert not lazy.loaded


def test_a_draining_worker_loads_no_pipeline_module_but_the_kinds() -> None:
    """HEAVY names the pipeline's packages one by one; this catches a module added beside them."""
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ingestq.runtime; print(sorted(m for m in sys.modules if "
            "m.startswith('ingestq.pipeline')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert found == str(["ingestq.pipeline", "ingestq.pipeline.ingest", "ingestq.pipeline.ingest.kinds"])
