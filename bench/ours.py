"""ingestq as a benchmarked system: `ingestq worker` processes from the project's own venv.

"ingestq" (the row the goals judge) runs the defaults a user gets. Variants show the knobs: "ingestq c10"
(`--concurrency 10`, the former default: a claim takes at most 10 jobs per round trip) and "ingestq FULL"
(SQLite synchronous=FULL).
"""

from __future__ import annotations

import compileall
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


def compile_bytecode() -> None:
    """Compile ingestq's bytecode (and the drivers', which every system imports) before anything is timed,
    as pip does when it installs a package. From an editable install with PYTHONDONTWRITEBYTECODE set (as on
    the machine of BENCHMARKS.md) every worker launch would otherwise compile ingestq's source again, about
    50 ms of start-up that a deployed worker never pays, nor the peers, which pip installed compiled."""
    for folder in (ROOT / "src" / "ingestq", ROOT / "bench"):
        compileall.compile_dir(folder, quiet=1)


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
    c10 = _workers(10)
    once = "`ingestq worker --once`"
    return [
        System(
            "ingestq",
            "postgresql",
            py,
            DRIVER,
            default,
            drains=True,
            note=f"{once}, defaults (concurrency 100)",
        ),
        System("ingestq c10", "postgresql", py, DRIVER, c10, drains=True, note=f"{once} --concurrency 10"),
        System(
            "ingestq",
            "sqlite",
            py,
            DRIVER,
            default,
            drains=True,
            note=f"{once}, defaults (concurrency 100, NORMAL)",
        ),
        System("ingestq c10", "sqlite", py, DRIVER, c10, drains=True, note=f"{once} --concurrency 10"),
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


VARIANTS = frozenset({"ingestq c10", "ingestq FULL"})  # measured for throughput only
