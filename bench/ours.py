"""ingestq as a benchmarked system: `ingestq worker` processes from the project's own venv.

"ingestq" (the row the goals judge) runs the defaults a user gets. Variants show the knobs: "ingestq c50"
(`--concurrency 50`: a claim can take 50 jobs per round trip) and "ingestq FULL" (SQLite synchronous=FULL).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from bench.harness import ROOT, System

VENV_BIN = Path(sys.executable).parent
APP = "bench.drivers.ingestq_app:registry"
DRIVER = "bench.drivers.ingestq_driver"


def _ingestq() -> str:
    exe = VENV_BIN / "ingestq"
    return str(exe if exe.exists() else ROOT / ".venv" / "bin" / "ingestq")


def _workers(concurrency: int | None) -> Callable[[int, bool], list[list[str]]]:
    def argv(procs: int, drain: bool) -> list[list[str]]:
        base = [_ingestq(), "worker", "--app", APP]
        if concurrency:
            base += ["--concurrency", str(concurrency)]
        return [base + (["--once"] if drain else [])] * procs

    return argv


def systems() -> list[System]:
    py = Path(sys.executable)
    default = _workers(None)
    c50 = _workers(50)
    once = "`ingestq worker --once`"
    return [
        System(
            "ingestq",
            "postgresql",
            py,
            DRIVER,
            default,
            drains=True,
            note=f"{once}, defaults (concurrency 10)",
        ),
        System("ingestq c50", "postgresql", py, DRIVER, c50, drains=True, note=f"{once} --concurrency 50"),
        System(
            "ingestq",
            "sqlite",
            py,
            DRIVER,
            default,
            drains=True,
            note=f"{once}, defaults (concurrency 10, NORMAL)",
        ),
        System("ingestq c50", "sqlite", py, DRIVER, c50, drains=True, note=f"{once} --concurrency 50"),
        System(
            "ingestq FULL",
            "sqlite",
            py,
            DRIVER,
            default,
            drains=True,
            env={"INGESTQ_SQLITE_SYNCHRONOUS": "FULL"},
            note=f"{once}, defaults, INGESTQ_SQLITE_SYNCHRONOUS=FULL",
        ),
    ]


VARIANTS = frozenset({"ingestq c50", "ingestq FULL"})  # measured for throughput only
