"""One soak on one backend: start the database, `ingestq serve`, two workers; load, sample, drain, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.chaos.harness import Cluster, PgServer
from bench.machine import loadavg
from bench.soak.analyse import Sample
from bench.soak.dbsize import measure
from bench.soak.load import Load
from bench.soak.procs import children, rss_mb, start_serve, stop
from ingestq.model.job import JobState
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.base import Store


@dataclass
class Options:
    backend: str = "sqlite"
    minutes: float = 60.0
    workers: int = 2
    embedder: str = "local"  # "fake": the deterministic embedder, when the model cannot keep up
    job_rate: float = 5.0  # probe jobs per second
    doc_rate: float = 0.5  # documents per second
    probe_seconds: float = 0.05
    keep_docs: int = 100  # indexed documents kept; older ones are deleted
    retention: float = 60.0  # seconds a succeeded (or cancelled) job is kept
    cache_retention: float = 600.0  # seconds an embedding-cache entry is kept
    sample_every: float = 10.0
    drain: float = 300.0  # seconds the open jobs may take to finish once the load stops
    keep: bool = False  # keep the scratch directory (logs, database)


@dataclass
class Outcome:
    load: Load
    samples: list[Sample]
    lost: list[str]
    duration: float
    exits: dict[str, int | None]
    root: Path


def settings_env(opts: Options) -> dict[str, str]:
    """What the served processes get: short retention so finished jobs and embedding-cache entries are
    pruned during the run (failed jobs kept: the soak must see every failure), the chosen embedder."""
    return {
        "INGESTQ_RETENTION_SUCCEEDED": str(opts.retention),
        "INGESTQ_RETENTION_CANCELLED": str(opts.retention),
        "INGESTQ_RETENTION_FAILED": "0",
        "INGESTQ_EMBED_CACHE_RETENTION": str(opts.cache_retention),
        "INGESTQ_EMBEDDER": opts.embedder,
    }


async def _backlog(store: Store) -> int:
    stats = await store.stats(datetime.now(UTC))
    return sum(s.counts.get(JobState.QUEUED, 0) + s.counts.get(JobState.RUNNING, 0) for s in stats)


async def _sample(t: float, url: str, pids: dict[str, int], store: Store) -> Sample:
    db = await asyncio.to_thread(measure, url)
    parsers = {
        name: sum(rss_mb(c) or 0.0 for c in children(pid)) for name, pid in pids.items() if name != "api"
    }
    return Sample(
        t=t,
        rss={name: rss_mb(pid) for name, pid in pids.items()},
        parsers=parsers,
        db=db,
        backlog=await _backlog(store),
        load1=loadavg()[0],
    )


async def soak(opts: Options, log: bool = True) -> Outcome:
    root = Path(tempfile.mkdtemp(prefix=f"ingestq-soak-{opts.backend}-"))
    pg = PgServer() if opts.backend == "pg" else None
    url = pg.create_db() if pg is not None else f"sqlite:///{root}/ingestq.db"
    env = settings_env(opts)
    # Cluster starts its workers with this process's environment (and CHAOS_EMBEDDER as the embedder)
    os.environ.update(env)
    os.environ["CHAOS_EMBEDDER"] = opts.embedder
    served = start_serve(url, root / "serve.log", env)
    cluster = Cluster(url, root, [])
    store = open_store(Settings(database_url=url, auto_migrate=False))
    try:
        for _ in range(opts.workers):
            await cluster.wait_started(cluster.start(), within=180)
        await store.open()
        pids = {"api": served.proc.pid, **{f"w{w.index}": w.proc.pid for w in cluster.workers}}
        t0 = time.monotonic()

        def clock() -> float:
            return time.monotonic() - t0

        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            load = Load(
                http,
                store,
                clock,
                job_rate=opts.job_rate,
                doc_rate=opts.doc_rate,
                probe_seconds=opts.probe_seconds,
                keep_docs=opts.keep_docs,
            )
            samples: list[Sample] = []
            stop_load = asyncio.Event()

            async def sampler() -> None:
                while not stop_load.is_set():
                    try:
                        s = await _sample(clock(), url, pids, store)
                        samples.append(s)
                        if log and len(samples) % 6 == 1:
                            print(_progress(opts.backend, s, load), flush=True)
                    except Exception as exc:  # a sample missed is not the soak failed: say so, go on
                        load.tally.problems.append(f"t={clock():.0f}s sample failed: {exc}")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop_load.wait(), opts.sample_every)

            reader = asyncio.create_task(load.documents())
            tasks = [
                asyncio.create_task(load.run(stop_load)),
                asyncio.create_task(load.track(stop_load)),
                asyncio.create_task(sampler()),
            ]
            await asyncio.sleep(opts.minutes * 60)
            duration = clock()
            stop_load.set()
            await asyncio.gather(*tasks)
            await load.drain(opts.drain)
            reader.cancel()
            lost = await load.unaccounted()
        # a process that exited before we asked it to is a failure in itself
        died = [f"w{w.index}" for w in cluster.workers if w.proc.poll() is not None]
        died += ["api"] if served.proc.poll() is not None else []
        load.tally.problems.extend(f"{name} exited during the run" for name in died)
        await cluster.stop_all()
        exits: dict[str, int | None] = {f"w{w.index}": w.code for w in cluster.workers}
        exits["api"] = stop(served.proc)
        # a count that does not depend on the tracker: each worker's own tally when it stops
        load.tally.workers_succeeded = sum(
            int(m.group(1))
            for w in cluster.workers
            for m in re.finditer(r"stopped: (?:[^\n]*?, )?(\d+) succeeded", w.log.read_text(errors="replace"))
        )
        return Outcome(load, samples, lost, duration, exits, root)
    finally:
        cluster.kill_all()
        stop(served.proc)
        await store.close()
        if pg is not None:
            pg.close()
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)


def _progress(backend: str, s: Sample, load: Load) -> str:
    rss = " ".join(f"{n}={v:.0f}MB" if v is not None else f"{n}=gone" for n, v in s.rss.items())
    return (
        f"  [{backend} {s.t / 60:5.1f} min] {rss} db={s.db.total_mb:.1f}MB wal={s.db.wal_mb:.1f}MB "
        f"dead={s.db.dead} rows={s.db.rows} backlog={s.backlog} load={s.load1:.1f} "
        f"sent={dict(load.tally.enqueued)} done={dict(load.tally.succeeded)} "
        f"problems={len(load.tally.problems)}"
    )
