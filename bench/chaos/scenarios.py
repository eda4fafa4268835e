"""The fault scenarios. Each runs the same load twice when it reports throughput (undisturbed, then with
its faults), on a fresh database each time, and returns a `Result` with its figures and checks."""

from __future__ import annotations

import asyncio
import errno
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.harness import (
    Cluster,
    Figures,
    PgServer,
    all_jobs,
    analyse,
    insert_probes,
    sqlite_integrity,
    succeeded,
    wait_done,
    with_store,
)
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.base import Store

# Moderate sizes (3 workers x 8 slots, 0.2 s jobs: about 110 jobs/s here): long enough for several faults.
DEFAULT_JOBS = {
    "sigkill": 4000,
    "rolling-sigterm": 3000,
    "pg-restart": 8000,
    "pg-restart-fast": 3000,
    "pg-outage": 4000,
    "sqlite-full-disk": 2000,
    "soak": 6000,  # --minutes M sets it (the soak is meant for --minutes 60)
    "multi-host": 2000,  # the exactly-once batch; the partition batch is HostPlan.cut_jobs
}


@dataclass
class Options:
    backend: str = "sqlite"
    jobs: int | None = None  # None: the scenario's default (DEFAULT_JOBS)
    seconds: float = 0.2  # each probe job sleeps this long
    workers: int = 3
    concurrency: int = 8
    lease: float | None = None  # None: the scenario's default
    grace: float = 10.0
    every: tuple[float, float] | None = None  # fault interval range; None: the scenario's default
    down: float = 30.0  # pg-outage: seconds the server stays stopped
    minutes: float | None = None  # run about this long (sets the number of jobs)
    timeout: float = 180.0  # give up waiting for the jobs after this long
    max_faults: int | None = None  # stop injecting after this many (the test-suite samples)
    baseline: bool = True  # also run the load undisturbed, for the throughput ratio
    fill_seconds: float = 5.0  # sqlite-full-disk: how long the workers meet the full disk
    resume_within: float = 60.0  # sqlite-full-disk: how long work may take to resume once space is freed

    def jobs_for(self, scenario: str, factor: float = 0.8) -> int:
        """--minutes M: enough jobs to keep the workers busy about M minutes (at `factor` of the ideal)."""
        if self.minutes is None:
            return self.jobs if self.jobs is not None else DEFAULT_JOBS[scenario]
        return int(self.minutes * 60 * self.workers * self.concurrency / max(self.seconds, 0.01) * factor)


@dataclass
class Result:
    scenario: str
    backend: str
    jobs: int
    faults: str
    figures: Figures | None
    recovery: str
    baseline: float | None  # jobs/s undisturbed
    checks: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.figures is None or not self.baseline:
            return None
        return self.figures.throughput / self.baseline

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


class Env:
    """Where the databases live: a scratch directory, and for PostgreSQL one embedded server."""

    def __init__(self, backend: str, keep: bool = False) -> None:
        self.backend = backend
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="ingestq-chaos-"))
        self.pg: PgServer | None = PgServer() if backend == "pg" else None
        self._n = 0

    def scratch(self, name: str) -> Path:
        self._n += 1
        path = self.root / f"{self._n:02d}-{name}"
        path.mkdir()
        return path

    async def fresh_db(self, where: Path) -> str:
        url = self.pg.create_db() if self.pg is not None else f"sqlite:///{where / 'ingestq.db'}"
        await with_store(url, "migrate")
        return url

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
        if self.keep:
            print(f"  kept the databases, marker files and worker logs in {self.root}", flush=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


Fault = Callable[[Cluster, "asyncio.Task[float | None]", dict[str, Any]], Awaitable[None]]

_baselines: dict[tuple[Any, ...], float] = {}


def worker_args(opts: Options, lease: float) -> list[str]:
    return [
        "--concurrency",
        str(opts.concurrency),
        "--poll-interval",
        "0.2",
        "--lease",
        str(lease),
        "--grace",
        str(opts.grace),
    ]


async def run_load(
    env: Env, opts: Options, name: str, lease: float, jobs: int, fault: Fault | None
) -> tuple[Figures, dict[str, Any], Cluster, str]:
    where = env.scratch(name)
    url = await env.fresh_db(where)
    store = open_store(Settings(database_url=url, auto_migrate=False))
    await store.open()
    info: dict[str, Any] = {}
    cluster = Cluster(url, where, worker_args(opts, lease))
    try:
        ids = await insert_probes(store, jobs, opts.seconds)
        for _ in range(opts.workers):
            cluster.start()
        for w in list(cluster.workers):
            await cluster.wait_started(w)
        stop = asyncio.Event()
        tail = asyncio.create_task(cluster.tailer(stop))
        done = asyncio.create_task(wait_done(cluster, store, jobs, opts.timeout))
        faults = asyncio.ensure_future(fault(cluster, done, info)) if fault is not None else None
        t_end = await done
        if faults is not None:
            await faults
        info["exit_codes"] = await cluster.stop_all()
        stop.set()
        await tail
        cluster.tail_once()
        rows = await all_jobs(store)
        figures = analyse(cluster, rows, list(ids), t_end if t_end is not None else cluster.now())
        if t_end is None:
            figures.notes.append(f"timed out after {opts.timeout:.0f}s")
    finally:
        cluster.kill_all()
        await store.close()
    if env.backend == "sqlite":
        info["integrity"] = sqlite_integrity(where / "ingestq.db")
    return figures, info, cluster, url


async def baseline(env: Env, opts: Options, lease: float, jobs: int) -> float | None:
    if not opts.baseline:
        return None
    key = (env.backend, jobs, opts.seconds, opts.workers, opts.concurrency, lease, opts.grace)
    if key not in _baselines:
        figures, _, _, _ = await run_load(env, opts, "baseline", lease, jobs, None)
        _baselines[key] = figures.throughput
        print(
            f"  undisturbed: {jobs} jobs in {figures.elapsed:.1f}s = {figures.throughput:.1f} jobs/s",
            flush=True,
        )
    return _baselines[key]


async def pause(seconds: float, done: asyncio.Task[float | None]) -> bool:
    """Sleep, waking early when the load is finished; True if it is."""
    await asyncio.wait({done}, timeout=seconds)
    return done.done()


def more_faults(opts: Options, done_so_far: int) -> bool:
    return opts.max_faults is None or done_so_far < opts.max_faults


def interval(opts: Options, default: tuple[float, float]) -> float:
    low, high = opts.every or default
    return random.uniform(low, high)


def common_checks(res: Result, fig: Figures, info: dict[str, Any]) -> None:
    res.checks["zero lost"] = fig.lost == 0
    res.checks["no attempt on two workers at once"] = fig.concurrent == 0
    if "integrity" in info:
        res.checks["integrity_check ok"] = info["integrity"] == "ok"


# --- SIGKILL ------------------------------------------------------------------------------------------


async def sigkill(env: Env, opts: Options, name: str = "sigkill") -> Result:
    lease = opts.lease or 5.0
    jobs = opts.jobs_for(name)
    base = await baseline(env, opts, lease, jobs)

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        info["kills"] = 0
        while more_faults(opts, info["kills"]) and not await pause(interval(opts, (2.0, 4.0)), done):
            live = cluster.live()
            if live:
                cluster.kill(random.choice(live))
                info["kills"] += 1
            cluster.start()  # the replacement

    fig, info, _, _ = await run_load(env, opts, "sigkill", lease, jobs, fault)
    bound = lease * 4 / 3 + 1.0  # expiry (≤ lease after the last heartbeat) + one rescue interval + slack
    rescue, rerun = fig.rescue_delay_max, fig.rerun_delay_max
    recovery = (
        f"killed jobs back in the queue ≤ {rescue:.1f}s, started again ≤ {rerun:.1f}s (lease {lease:g}s)"
        if rescue is not None and rerun is not None
        else "n/a"
    )
    res = Result(
        name,
        env.backend,
        jobs,
        f"{info['kills']} SIGKILL (every 2–4 s, replaced)",
        fig,
        recovery,
        base,
        extra={"lease": lease},
    )
    common_checks(res, fig, info)
    res.checks["every killed job re-run"] = fig.not_rerun == 0
    res.checks[f"rescued within lease + rescue interval ({bound:.1f}s)"] = rescue is None or rescue <= bound
    return res


# --- rolling SIGTERM ----------------------------------------------------------------------------------


async def rolling_sigterm(env: Env, opts: Options, name: str = "rolling-sigterm") -> Result:
    lease = opts.lease or 15.0
    jobs = opts.jobs_for(name)
    base = await baseline(env, opts, lease, jobs)

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        codes: list[int] = []
        exits: list[float] = []
        info["codes"], info["exits"] = codes, exits
        while more_faults(opts, len(codes)) and not await pause(interval(opts, (3.0, 5.0)), done):
            live = cluster.live()
            cluster.start()  # deploy-style: the new one first, then the oldest goes
            if live:
                t = cluster.now()
                codes.append(await cluster.terminate(live[0], within=opts.grace + 30))
                exits.append(cluster.now() - t)

    fig, info, _, _ = await run_load(env, opts, "rolling-sigterm", lease, jobs, fault)
    codes = info["codes"]
    slowest = max(info["exits"], default=0.0)
    res = Result(
        "rolling-sigterm",
        env.backend,
        jobs,
        f"{len(codes)} SIGTERM (every 3–5 s, rolling)",
        fig,
        f"slowest exit {slowest:.1f}s (grace {opts.grace:g}s)",
        base,
    )
    common_checks(res, fig, info)
    res.checks["restarts spent no attempt"] = fig.attempts_burned == 0
    res.checks["exit 0 every time"] = all(c == 0 for c in codes + info["exit_codes"])
    if any(c != 0 for c in codes):
        fig.notes.append(f"exit codes {sorted(set(codes))}")
    return res


# --- soak: both kinds of worker stop, for --minutes ------------------------------------------------


async def soak(env: Env, opts: Options, name: str = "soak") -> Result:
    """SIGKILL and rolling SIGTERM taking turns every 2–4 s (replacements started) for as long as the
    jobs last: `--minutes M` sizes the load. Not part of `all`: run it on purpose."""
    lease = opts.lease or 5.0
    jobs = opts.jobs_for(name)
    base = await baseline(env, opts, lease, jobs)

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        info["kills"], info["terms"], info["codes"] = 0, 0, []
        while more_faults(opts, info["kills"] + info["terms"]) and not await pause(
            interval(opts, (2.0, 4.0)), done
        ):
            live = cluster.live()
            cluster.start()
            if not live:
                continue
            if random.random() < 0.5:
                cluster.kill(random.choice(live))
                info["kills"] += 1
            else:
                info["codes"].append(await cluster.terminate(live[0], within=opts.grace + 30))
                info["terms"] += 1

    fig, info, _, _ = await run_load(env, opts, name, lease, jobs, fault)
    rescue = fig.rescue_delay_max
    res = Result(
        name,
        env.backend,
        jobs,
        f"{info['kills']} SIGKILL + {info['terms']} SIGTERM (every 2–4 s, replaced)",
        fig,
        f"killed jobs back in the queue ≤ {rescue:.1f}s (lease {lease:g}s)" if rescue is not None else "n/a",
        base,
    )
    common_checks(res, fig, info)
    res.checks["every killed job re-run"] = fig.not_rerun == 0
    res.checks["SIGTERM: exit 0 every time"] = all(c == 0 for c in info["codes"])
    return res


# --- PostgreSQL restarted / unreachable ---------------------------------------------------------------


def pg_checks(res: Result, fig: Figures, info: dict[str, Any], resumed: list[float]) -> None:
    common_checks(res, fig, info)
    res.checks["workers stayed up (exit 0 at the end)"] = all(c == 0 for c in info["exit_codes"])
    res.checks["nothing finished ran again"] = fig.finished_twice == 0
    res.checks["every re-run counted as an attempt"] = fig.uncounted_reruns == 0
    res.checks["work resumed within 1 s"] = bool(resumed) and max(resumed) <= 1.0


async def pg_restart(env: Env, opts: Options, name: str = "pg-restart") -> Result:
    assert env.pg is not None
    server = env.pg
    lease = opts.lease or 15.0
    jobs = opts.jobs_for(name)
    base = await baseline(env, opts, lease, jobs)
    ups: list[float] = []

    default = (2.0, 4.0) if name == "pg-restart-fast" else (15.0, 25.0)

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        while more_faults(opts, len(ups)) and not await pause(interval(opts, default), done):
            await asyncio.to_thread(server.restart)  # -w: returns once it accepts connections
            ups.append(cluster.now())

    fig, info, cluster, _ = await run_load(env, opts, name, lease, jobs, fault)
    resumed = [r - t for t in ups if (r := cluster.first_after(t)) is not None]
    low, high = opts.every or default
    res = Result(
        name,
        "pg",
        jobs,
        f"{len(ups)} restarts (every {low:g}–{high:g} s)",
        fig,
        f"first claim ≤ {max(resumed):.2f}s after up" if resumed else "n/a",
        base,
    )
    pg_checks(res, fig, info, resumed)
    if opts.every is None and name == "pg-restart":
        res.checks["throughput ≥ 90% of undisturbed"] = (res.ratio or 0) >= 0.9
    return res


async def pg_outage(env: Env, opts: Options, name: str = "pg-outage") -> Result:
    assert env.pg is not None
    server = env.pg
    lease = opts.lease or 45.0  # the goal: an outage shorter than the lease re-runs nothing
    jobs = opts.jobs_for(name)
    ups: list[float] = []

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        if await pause(5.0, done):
            return
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(opts.down)
        info["exited_during_outage"] = sum(1 for w in cluster.workers if w.proc.poll() is not None)
        await asyncio.to_thread(server.start)
        ups.append(cluster.now())

    fig, info, cluster, _ = await run_load(env, opts, "pg-outage", lease, jobs, fault)
    resumed = [r - t for t in ups if (r := cluster.first_after(t)) is not None]
    res = Result(
        "pg-outage",
        "pg",
        jobs,
        f"server stopped {opts.down:g}s once (lease {lease:g}s)",
        fig,
        f"first claim {max(resumed):.2f}s after up" if resumed else "n/a",
        None,
    )
    pg_checks(res, fig, info, resumed)
    res.checks["no worker exited during the outage"] = info.get("exited_during_outage", 0) == 0
    return res


# --- SQLite on a full disk ----------------------------------------------------------------------------


def _fill(path: Path) -> int:
    """Write `path` until the file system is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]


def _mount(disk: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)


def _umount(disk: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(disk)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.5)
    subprocess.run(["umount", "-l", str(disk)], check=False)


async def _try_enqueue(store: Store, n: int, seconds: float) -> tuple[list[int], str]:
    try:
        return await insert_probes(store, n, seconds), ""
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"


async def sqlite_full_disk(env: Env, opts: Options, name: str = "sqlite-full-disk") -> Result:
    if env.backend != "sqlite":
        raise SystemExit("sqlite-full-disk runs on SQLite only")
    where = env.scratch("full-disk")
    disk = where / "disk"
    disk.mkdir()
    await asyncio.to_thread(_mount, disk)
    jobs = opts.jobs_for(name)
    info: dict[str, Any] = {}
    try:
        url = f"sqlite:///{disk / 'ingestq.db'}"
        cluster = Cluster(url, where, worker_args(opts, opts.lease or 15.0))
        await with_store(url, "migrate")
        store = open_store(Settings(database_url=url, auto_migrate=False))
        await store.open()
        try:
            ids = await insert_probes(store, jobs, opts.seconds)
            filler = disk / "filler"
            info["filled"] = await asyncio.to_thread(_fill, filler)
            refused, error = await _try_enqueue(store, 200, opts.seconds)
            single, error1 = await _try_enqueue(store, 1, opts.seconds)
            info["enqueue_error"] = (error or error1).replace(str(disk) + "/", "")
            ids += refused + single  # whatever an enqueue confirmed must not be lost
            for _ in range(opts.workers):
                cluster.start()
            stop = asyncio.Event()
            tail = asyncio.create_task(cluster.tailer(stop))
            await asyncio.sleep(opts.fill_seconds)  # the workers meet the full disk
            before = await succeeded(store)
            info["alive_while_full"] = len(cluster.live())
            for _ in range(opts.workers - len(cluster.live())):
                cluster.start()  # a supervisor restarts what died
            filler.unlink()
            freed = cluster.now()
            resumed = None
            while cluster.now() - freed < opts.resume_within:
                if await succeeded(store) > before:
                    resumed = cluster.now() - freed
                    break
                await asyncio.sleep(0.05)
            t_end = await wait_done(cluster, store, len(ids), opts.timeout) if resumed is not None else None
            _, error2 = await _try_enqueue(store, 10, 0)
            info["enqueue_after_free"] = error2 or "ok"
            info["exit_codes"] = await cluster.stop_all()
            stop.set()
            await tail
            rows = await all_jobs(store)
            fig = analyse(cluster, rows, ids, t_end if t_end is not None else cluster.now())
            if resumed is None:
                fig.notes.append(f"no job finished within {opts.resume_within:g} s of the space being freed")
            elif t_end is None:
                fig.notes.append(f"timed out after {opts.timeout:.0f}s")
        finally:
            cluster.kill_all()
            await store.close()
        info["integrity"] = sqlite_integrity(disk / "ingestq.db")
    finally:
        await asyncio.to_thread(_umount, disk)
    res = Result(
        "sqlite-full-disk",
        "sqlite",
        len(ids),
        f"8 MB tmpfs filled for {opts.fill_seconds:g} s; enqueue refused: "
        + (info["enqueue_error"][:90] or "NOT refused"),
        fig,
        f"work resumed {resumed:.2f}s after space freed" if resumed is not None else "did not resume",
        None,
        extra=info,
    )
    common_checks(res, fig, info)
    res.checks["enqueue on a full disk fails with an error"] = bool(info["enqueue_error"])
    res.checks["enqueue works once space is freed"] = info["enqueue_after_free"] == "ok"
    res.checks["work resumed"] = resumed is not None
    res.checks["workers exit 0"] = all(c == 0 for c in info["exit_codes"])
    if info["alive_while_full"] < opts.workers:
        fig.notes.append(f"{opts.workers - info['alive_while_full']} workers exited on the full disk")
    return res


def _ingest() -> Any:
    """bench/chaos/ingest_faults.py, imported on use (it imports this module)."""
    from bench.chaos import ingest_faults

    return ingest_faults


async def _multi_host(env: Env, opts: Options, name: str = "multi-host") -> Result:
    from bench.chaos.multihost import multi_host  # it builds on this module

    return await multi_host(env, opts, name)


SCENARIOS: dict[str, tuple[Callable[[Env, Options, str], Awaitable[Result]], tuple[str, ...]]] = {
    "sigkill": (sigkill, ("sqlite", "pg")),
    "rolling-sigterm": (rolling_sigterm, ("sqlite", "pg")),
    "pg-restart": (pg_restart, ("pg",)),
    "pg-restart-fast": (pg_restart, ("pg",)),
    "pg-outage": (pg_outage, ("pg",)),
    "sqlite-full-disk": (sqlite_full_disk, ("sqlite",)),
    "soak": (soak, ("sqlite", "pg")),
    "embed-faults": (lambda env, opts, name: _ingest().embed_faults(env, opts, name), ("sqlite", "pg")),
    "parser-kills": (lambda env, opts, name: _ingest().parser_kills(env, opts, name), ("sqlite",)),
    "multi-host": (_multi_host, ("pg",)),
}
IN_ALL = [name for name in SCENARIOS if name != "soak"]
