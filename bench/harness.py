"""Runs one system through the workload: fresh database, enqueue, launch workers, verify, time.

Every system is described by a `System`: which interpreter runs its driver, how to start one worker,
whether that worker can drain the queue and exit by itself. The harness never imports a peer.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.machine import loadavg, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class System:
    name: str  # shown in tables
    backend: str  # "postgresql" | "sqlite"
    python: Path
    driver: str  # module run as `python -m <driver> <command>`
    # argv for the worker processes: procs -> list of argv (huey starts two processes from one command)
    worker_argv: Callable[[int, bool], list[list[str]]]
    drains: bool  # the worker exits by itself once the queue is empty
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""
    max_runs: int | None = None  # cap on throughput runs (a slow peer that no goal depends on)


@dataclass
class Target:
    """One fresh database (and line file) for one run."""

    env: dict[str, str]
    out: Path
    cleanup: Callable[[], None]


def use_pg(admin_url: str) -> None:
    """Point every PostgreSQL run at this server (see bench/pgserver.py)."""
    global PG_ADMIN_URL
    PG_ADMIN_URL = admin_url


def pg_url(dbname: str) -> str:
    """The admin URL with another database (keeps query parameters such as a Unix-socket host)."""
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


CHILD_PYTHONPATH = os.pathsep.join((str(ROOT / "src"), str(ROOT)))
"""The benchmark's processes import ingestq from this checkout's src/, ahead of whatever the venv's
editable install points at: a clone or worktree of older code (an A/B run) measures its own code."""


@contextmanager
def fresh_target(system: System) -> Iterator[Target]:
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"{system.name.replace(' ', '_').replace('/', '_')}_{uuid.uuid4().hex[:8]}"
    out = OUT / f"{tag}.lines"
    env = {**os.environ, **system.env, "BENCH_OUT": str(out), "PYTHONPATH": CHILD_PYTHONPATH}
    dbname = f"bench_{uuid.uuid4().hex[:12]}"
    if system.backend == "postgresql":
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {dbname}")
        env["BENCH_DSN"] = pg_url(dbname)
        env["INGESTQ_DATABASE_URL"] = pg_url(dbname)
    else:
        db = OUT / f"{tag}.db"
        env["BENCH_DB"] = str(db)
        env["INGESTQ_DATABASE_URL"] = f"sqlite:///{db}"
    try:
        yield Target(env, out, lambda: None)
    finally:
        if system.backend == "postgresql":
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        for path in OUT.glob(f"{tag}*"):
            path.unlink(missing_ok=True)


def driver(system: System, target: Target, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run a driver command to completion; return the JSON object it printed last (if any)."""
    proc = subprocess.run(
        [str(system.python), "-m", system.driver, *args],
        env=target.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{system.name}: `{' '.join(args)}` failed:\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def start_workers(
    system: System, target: Target, procs: int, drain: bool, log: Path
) -> list[subprocess.Popen[bytes]]:
    handle = log.open("ab")
    return [
        subprocess.Popen(
            argv, env=target.env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        for argv in system.worker_argv(procs, drain)
    ]


def reap(workers: list[subprocess.Popen[bytes]], timeout: float) -> float:
    """Wait for every worker to exit by itself; return their CPU seconds (user + system, from wait4)."""
    deadline = time.monotonic() + timeout
    cpu = 0.0
    pending = list(workers)
    while pending and time.monotonic() < deadline:
        for w in list(pending):
            pid, status, usage = os.wait4(w.pid, os.WNOHANG)
            if pid:
                w.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
                pending.remove(w)
        time.sleep(0.005)
    if pending:
        raise TimeoutError(f"{len(pending)} worker(s) still running after {timeout:g} s")
    return cpu


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _exited(worker: subprocess.Popen[bytes]) -> bool:
    """Whether the worker has exited, without reaping it (so `reap` still gets its CPU from wait4)."""
    if worker.returncode is not None:
        return True
    return os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def wait_lines(
    path: Path, n: int, timeout: float, workers: list[subprocess.Popen[bytes]] | None = None
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_lines(path) >= n:
            return True
        if workers and all(_exited(w) for w in workers):
            return count_lines(path) >= n
        time.sleep(0.01)
    return False


def read_lines(path: Path) -> list[tuple[int, float, float, int]]:
    rows = []
    for line in path.read_text().splitlines():
        i, ts, start, pid = line.split()
        rows.append((int(i), float(ts), float(start), int(pid)))
    return rows


def verify(rows: list[tuple[int, float, float, int]], n: int) -> str:
    """'' when the lines hold exactly ids 0..n-1 once each; otherwise what is wrong."""
    ids = [r[0] for r in rows if r[0] < n]
    seen = set(ids)
    lost = n - len(seen & set(range(n)))
    twice = len(ids) - len(seen)
    return "" if lost == 0 and twice == 0 else f"{lost} lost, {twice} run twice"


def throughput(system: System, n: int, procs: int, timeout: float = 600) -> dict[str, Any]:
    with fresh_target(system) as target:
        driver(system, target, "setup")
        bulk = driver(system, target, "enqueue", str(n))
        load_before = loadavg()
        log = OUT / f"{system.name.replace(' ', '_')}-worker.log"
        t0 = time.perf_counter()
        wall0 = time.time()
        exited: float | None
        workers = start_workers(system, target, procs, system.drains, log)
        try:
            if system.drains:
                # The clock stops when the n-th job has run, as for the peers (whose workers never exit
                # by themselves); the drain's last outcome commit and process exit are timed apart.
                done = wait_lines(target.out, n, timeout, workers)
                elapsed = time.perf_counter() - t0
                cpu = reap(workers, timeout)
                exited = time.perf_counter() - t0
            else:
                done = wait_lines(target.out, n, timeout, workers)
                elapsed = time.perf_counter() - t0
                cpu = sum(tree_cpu_seconds(w.pid) for w in workers)
                exited = None
        finally:
            stop_workers(workers)
        rows = read_lines(target.out)
        problem = verify(rows, n) if done else f"only {len(rows)} of {n} jobs ran (see {log})"
        starts = sorted(r[2] for r in rows)
        steady = (
            (len(starts) - 1) / (starts[-1] - starts[0])
            if len(starts) > 1 and starts[-1] > starts[0]
            else 0.0
        )
        return {
            "jobs": n,
            "procs": procs,
            "seconds": elapsed,
            "exit_seconds": exited,
            "jobs_per_s": n / elapsed,
            "steady_jobs_per_s": steady,
            "cpu_ms_per_1k": cpu * 1000 / n * 1000,
            "startup_s": (starts[0] - wall0) if starts else None,
            "bulk_jobs_per_s": bulk.get("jobs_per_s"),
            "problem": problem,
            "load_before": load_before,
            "load_after": loadavg(),
        }


def pickup(
    system: System, n: int = 200, interval: float = 0.02, idle_seconds: float = 10.0
) -> dict[str, Any]:
    """One idle worker: its CPU over `idle_seconds`, then `n` jobs enqueued `interval` apart."""
    warm = 10_000_000  # id of the warm-up job that proves the worker is up
    with fresh_target(system) as target:
        driver(system, target, "setup")
        log = OUT / f"{system.name.replace(' ', '_')}-latency.log"
        load_before = loadavg()
        workers = start_workers(system, target, 1, False, log)
        try:
            driver(system, target, "latency", "1", "0", "--start", str(warm))
            if not wait_lines(target.out, 1, 120, workers):
                raise RuntimeError(f"{system.name}: worker never ran the warm-up job (see {log})")
            time.sleep(2.0)  # let start-up work (imports, first polls, back-off) settle
            cpu0, t0 = tree_cpu_seconds(workers[0].pid), time.perf_counter()
            time.sleep(idle_seconds)
            idle = (tree_cpu_seconds(workers[0].pid) - cpu0) / (time.perf_counter() - t0)
            calls = driver(system, target, "latency", str(n), str(interval))
            ok = wait_lines(target.out, n + 1, 60, workers)
        finally:
            stop_workers(workers)
        rows = [r for r in read_lines(target.out) if r[0] < n]
        lat = sorted((start - ts) * 1000 for _, ts, start, _ in rows)
        return {
            "jobs": n,
            "interval_ms": interval * 1000,
            "latencies_ms": lat,
            "p50_ms": statistics.median(lat) if lat else None,
            "p99_ms": _percentile(lat, 0.99),
            "max_ms": lat[-1] if lat else None,
            "idle_cpu_pct": idle * 100,
            "enqueue_p50_ms": calls.get("enqueue_p50_ms"),
            "enqueue_p99_ms": calls.get("enqueue_p99_ms"),
            "problem": "" if ok else f"only {len(rows)} of {n} latency jobs ran",
            "load_before": load_before,
            "load_after": loadavg(),
        }


def pooled_pickup(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several pickup runs of one system as one figure: percentiles over all their jobs (a p99 of one
    run of 200 jobs is its second-slowest job, which moves by milliseconds from run to run), the median
    of their idle CPU and enqueue-call times. Runs with a problem are left out and said."""
    good = [r for r in runs if not r.get("problem") and not r.get("error")]
    if not good:
        return runs[-1]
    lat = sorted(x for r in good for x in r["latencies_ms"])
    bad = len(runs) - len(good)
    return {
        "system": good[0]["system"],
        "backend": good[0]["backend"],
        "runs": len(good),
        "jobs": len(lat),
        "interval_ms": good[0]["interval_ms"],
        "p50_ms": statistics.median(lat) if lat else None,
        "p99_ms": _percentile(lat, 0.99),
        "max_ms": lat[-1] if lat else None,
        "idle_cpu_pct": median_of(good, "idle_cpu_pct"),
        "enqueue_p50_ms": median_of(good, "enqueue_p50_ms"),
        "enqueue_p99_ms": median_of(good, "enqueue_p99_ms"),
        "problem": f"{bad} of {len(runs)} runs failed and are left out" if bad else "",
        "load_before": good[0]["load_before"],
        "load_after": good[-1]["load_after"],
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None and not r.get("problem")]
    return statistics.median(vals) if vals else None
