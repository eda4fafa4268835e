"""ingestq as a benchmarked system: `ingestq worker` processes from the project's own venv."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.harness import ROOT, System

VENV_BIN = Path(sys.executable).parent
APP = "bench.drivers.ingestq_app:registry"


def _ingestq() -> str:
    exe = VENV_BIN / "ingestq"
    return str(exe if exe.exists() else ROOT / ".venv" / "bin" / "ingestq")


def systems(concurrency: int | None = None) -> list[System]:
    def workers(procs: int, drain: bool) -> list[list[str]]:
        argv = [_ingestq(), "worker", "--app", APP]
        if concurrency:
            argv += ["--concurrency", str(concurrency)]
        return [argv + (["--once"] if drain else [])] * procs

    conc = f"--concurrency {concurrency}" if concurrency else "default concurrency (10)"
    py = Path(sys.executable)
    return [
        System(
            "ingestq",
            "postgresql",
            py,
            "bench.drivers.ingestq_driver",
            workers,
            drains=True,
            note=f"`ingestq worker --once`, {conc}",
        ),
        System(
            "ingestq",
            "sqlite",
            py,
            "bench.drivers.ingestq_driver",
            workers,
            drains=True,
            note=f"`ingestq worker --once`, {conc}, synchronous=NORMAL",
        ),
        System(
            "ingestq FULL",
            "sqlite",
            py,
            "bench.drivers.ingestq_driver",
            workers,
            drains=True,
            env={"INGESTQ_SQLITE_SYNCHRONOUS": "FULL"},
            note=f"`ingestq worker --once`, {conc}, INGESTQ_SQLITE_SYNCHRONOUS=FULL",
        ),
    ]
