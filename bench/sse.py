"""SSE fan-out latency: N subscribers on one `ingestq serve` process, from a job's commit to each arrival.

    python -m bench.sse                          # 200 subscribers, 40 jobs (120 state changes), both backends
    python -m bench.sse --only sqlite --subscribers 50 --jobs 10
    python -m bench.sse --pg system              # PostgreSQL: the machine's (BENCH_PG_URL) or embedded

One `ingestq serve` process (real uvicorn, a subprocess) serves `/v1/events`. A second process holds the
N subscriber streams (httpx, one asyncio loop) and stamps each `job` event with `time.time()` on arrival.
This process plays the worker through the store: it enqueues a job, claims it, finishes it, pausing 50 to
150 ms (random) between steps, and stamps each step when the store call returned, i.e. once its commit
is done. Latency = arrival - commit, per (subscriber, job, state). Goal: p99 <= 250 ms on both backends.
Results go to bench/out/sse-<timestamp>.json and a Markdown table on stdout (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from bench import machine, pgserver
from bench.harness import OUT
from ingestq.errors import FeatureUnavailable
from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.store import open_store

GOAL_P99_MS = 250.0
QUEUE = "sse-bench"
INGESTQ = str(Path(sys.executable).parent / "ingestq")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the subscribers' process -----------------------------------------------------------------------------
async def _follow(url: str, ready: Any, arrivals: list[tuple[int, int, str, float]], index: int) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http,
        http.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"subscriber {index}: HTTP {response.status_code}")
        ready()
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name == "job":
                data = json.loads(line[5:])
                arrivals.append((index, int(data["job_id"]), str(data["state"]), time.time()))
            elif line == "":
                name = ""


async def _subscribers(url: str, n: int, all_ready: Any, stop: Any) -> list[tuple[int, int, str, float]]:
    arrivals: list[tuple[int, int, str, float]] = []
    opened = 0

    def ready() -> None:
        nonlocal opened
        opened += 1
        if opened == n:
            all_ready.set()

    tasks = [asyncio.create_task(_follow(url, ready, arrivals, i)) for i in range(n)]
    while not stop.is_set():
        await asyncio.sleep(0.1)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(str(failed[0].exception()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return arrivals


def subscriber_process(url: str, n: int, all_ready: Any, stop: Any, results: Any) -> None:
    try:
        arrivals = asyncio.run(_subscribers(url, n, all_ready, stop))
        results.put(("ok", (arrivals, time.process_time())))
    except Exception as exc:  # reported to the parent, which fails the run with it
        results.put(("error", repr(exc)))


# --- the worker's part: state changes with their commit times ---------------------------------------------
async def make_changes(database_url: str, jobs: int, seed: int) -> dict[tuple[int, str], float]:
    rng = random.Random(seed)
    committed: dict[tuple[int, str], float] = {}
    store = open_store(Settings(database_url=database_url))
    await store.open()
    try:
        for _ in range(jobs):
            now = datetime.now(UTC)
            (job,) = await store.job_insert_many([NewJob(kind="bench.sse", queue=QUEUE)], now)
            committed[(job.id, "queued")] = time.time()
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            req = ClaimRequest(worker_id="bench-sse", limit=1, lease_seconds=60, queues=(QUEUE,))
            (claimed,) = await store.job_claim(req, datetime.now(UTC))
            committed[(job.id, "running")] = time.time()
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            assert claimed.lease_owner is not None
            done = Outcome(claimed.id, claimed.lease_owner, claimed.attempt, OutcomeKind.SUCCEEDED)
            await store.job_finish_many([done], datetime.now(UTC))
            committed[(job.id, "succeeded")] = time.time()
            await asyncio.sleep(rng.uniform(0.05, 0.15))
    finally:
        await store.close()
    return committed


# --- one backend ----------------------------------------------------------------------------------------
@dataclass
class Result:
    backend: str
    subscribers: int
    changes: int
    samples: int
    missing: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    serve_cpu_s: float
    subscribers_cpu_s: float
    seconds: float
    database: str

    @property
    def meets_goal(self) -> bool:
        return self.missing == 0 and self.p99_ms <= GOAL_P99_MS


def _migrate(database_url: str) -> None:
    async def run() -> None:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            with contextlib.suppress(FeatureUnavailable):  # a server without pgvector: the queue is enough
                await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())


def _serve(database_url: str, subscribers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "INGESTQ_SSE_MAX_STREAMS": str(subscribers + 10), "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [INGESTQ, "--db", database_url, "serve", "--port", str(port)], stdout=out, stderr=out, env=env
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"ingestq serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("ingestq serve did not answer")
        time.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(backend: str, database_url: str, described: str, subscribers: int, jobs: int) -> Result:
    _migrate(database_url)
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"sse-serve-{backend}-{uuid.uuid4().hex[:6]}.log"
    proc, url = _serve(database_url, subscribers, log)
    ctx = mp.get_context("spawn")
    all_ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(
        target=subscriber_process, args=(url + "/v1/events", subscribers, all_ready, stop, results)
    )
    started = time.monotonic()
    try:
        child.start()
        if not all_ready.wait(60):
            raise RuntimeError(f"{subscribers} subscribers did not all connect")
        cpu_before = machine.tree_cpu_seconds(proc.pid)
        committed = asyncio.run(make_changes(database_url, jobs, seed=7))
        time.sleep(5.0)  # stragglers (a loaded machine delays some)
        cpu = machine.tree_cpu_seconds(proc.pid) - cpu_before
        stop.set()
        status, answer = results.get(timeout=60)
        if status != "ok":
            raise RuntimeError(f"subscribers failed: {answer}")
        arrivals, subscribers_cpu = answer
        child.join(30)
    finally:
        stop.set()
        if child.is_alive():
            child.kill()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    seen: dict[tuple[int, int, str], float] = {}
    for index, job_id, state, at in arrivals:
        seen.setdefault((index, job_id, state), at)
    latencies: list[float] = []
    missing = 0
    for (job_id, state), at in committed.items():
        for index in range(subscribers):
            arrived = seen.get((index, job_id, state))
            if arrived is None:
                missing += 1
            else:
                latencies.append((arrived - at) * 1000)
    return Result(
        backend=backend,
        subscribers=subscribers,
        changes=len(committed),
        samples=len(latencies),
        missing=missing,
        p50_ms=round(statistics.median(latencies), 1),
        p90_ms=round(_pct(latencies, 0.90), 1),
        p99_ms=round(_pct(latencies, 0.99), 1),
        max_ms=round(max(latencies), 1),
        serve_cpu_s=round(cpu, 2),
        subscribers_cpu_s=round(subscribers_cpu, 2),
        seconds=round(time.monotonic() - started, 1),
        database=described,
    )


def _pg_database(admin: str) -> tuple[str, str]:
    name = f"bench_sse_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(admin)
    return name, urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def table(results: list[Result]) -> str:
    lines = [
        "| backend | subscribers | state changes | samples | missing | p50 ms | p90 ms | p99 ms | max ms "
        "| serve CPU s | subscribers CPU s | goal p99 ≤ 250 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.subscribers} | {r.changes} | {r.samples:,} | {r.missing} | {r.p50_ms} "
            f"| {r.p90_ms} | {r.p99_ms} | {r.max_ms} | {r.serve_cpu_s} | {r.subscribers_cpu_s} "
            f"| {'met' if r.meets_goal else 'MISSED'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sse", description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=200)
    p.add_argument("--jobs", type=int, default=40, help="jobs; each makes 3 state changes (default 40)")
    p.add_argument("--only", choices=("sqlite", "postgresql"))
    p.add_argument("--pg", choices=("auto", "system", "embedded"), default="auto")
    args = p.parse_args(argv)
    results: list[Result] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="ingestq-bench-sse-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'q.db'}"
            results.append(measure("sqlite", url, "SQLite file (WAL)", args.subscribers, args.jobs))
    if args.only in (None, "postgresql"):
        choice, note = pgserver.choose(args.pg)
        if choice is None:
            print(f"PostgreSQL skipped: {note}", file=sys.stderr)
        else:
            try:
                name, url = _pg_database(choice.url)
                try:
                    results.append(
                        measure("postgresql", url, choice.description, args.subscribers, args.jobs)
                    )
                finally:
                    _drop(choice.url, name)
            finally:
                choice.stop()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "command": "python -m bench.sse " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": stamp,
        "machine": machine.describe(),
        "loadavg": machine.loadavg(),
        "results": [r.__dict__ for r in results],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"sse-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(table(results))
    print(f"\nmachine: {record['machine']}; load average at the end: {record['loadavg']}")
    for r in results:
        print(f"{r.backend}: {r.database}")
    return 0 if all(r.meets_goal for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
