"""The ingestion fault scenarios: real `ingestq worker` processes ingest real documents while

- `embed-faults`: the OpenAI-compatible embedding provider (bench/chaos/fault_server.py, real HTTP) times
  out, answers 500, answers 429 with Retry-After and closes the connection mid-reply, in flaky windows
  (some requests fail: the in-call retries absorb them) and outages (every request fails for longer than
  the in-call retries last: the job is given back with its attempt and the worker waits for the service);
  the workers share a requests-per-minute limit through the database, counted at the provider;
- `parser-kills`: parser child processes are SIGKILLed at random while documents parse, and one poison
  document kills its parser every time (a parser patched through `sitecustomize` in the workers'
  PYTHONPATH, only in parser children): the killed documents are retried, the poison one quarantined.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.chaos.fault_server import KINDS, FaultServer, Window
from bench.chaos.harness import Cluster, Figures
from bench.chaos.ingest_load import (
    IngestRows,
    corpus_documents,
    enqueue,
    environment,
    figures,
    generate_documents,
    read_rows,
    wait_settled,
)
from bench.chaos.scenarios import Env, Options, Result, more_faults, worker_args
from ingestq.settings import Settings
from ingestq.store import open_store

DEFAULT_JOBS = {"embed-faults": 2000, "parser-kills": 1000}
RPM = float(os.environ.get("CHAOS_EMBED_RPM", "600"))  # the shared limit given to the workers
CLIENT_TIMEOUT = 2.0  # INGESTQ_EMBEDDER_TIMEOUT; the server stalls longer on a `timeout` fault
POISON = "CHAOS-POISON-KILLS-ITS-PARSER"
KILL_ONCE_MARK = "CHAOS-KILLS-ITS-FIRST-PARSER"
KILL_ONCE = 5  # documents that kill the first parser that reads them
EVERY = (1.0, 2.0)  # parser-kills: seconds between kills

Fault = Callable[[Cluster, "asyncio.Task[float | None]", dict[str, Any]], Awaitable[None]]


def _jobs(opts: Options, name: str) -> int:
    return opts.jobs if opts.jobs is not None else DEFAULT_JOBS[name]


async def run_ingest(
    env: Env,
    opts: Options,
    name: str,
    lease: float,
    sources: list[Path],
    variables: dict[str, str],
    fault: Fault | None = None,
    on_begin: Callable[[], None] | None = None,
    fails: set[int] | None = None,
) -> tuple[Figures, IngestRows, dict[str, Any], Cluster]:
    """Ingest `sources` with `opts.workers` real workers (and `fault` running beside them); the
    documents at indexes `fails` are expected to fail."""
    where = env.scratch(name)
    url = await env.fresh_db(where)
    store = open_store(Settings(database_url=url, auto_migrate=False))
    await store.open()
    info: dict[str, Any] = {}
    args = [*worker_args(opts, lease), "--disable-ocr"]
    try:
        job_of = await enqueue(store, sources)
        expected = {job for k, job in enumerate(job_of) if fails and k in fails}
        with environment(**variables):
            cluster = Cluster(url, where, args)
            try:
                for _ in range(opts.workers):
                    cluster.start()
                for w in list(cluster.workers):
                    await cluster.wait_started(w)
                if on_begin is not None:
                    on_begin()
                began = time.monotonic()
                done = asyncio.create_task(wait_settled(store, len(job_of), opts.timeout))
                faults = asyncio.ensure_future(fault(cluster, done, info)) if fault is not None else None
                ended = await done
                if faults is not None:
                    await faults
                info["exit_codes"] = await cluster.stop_all()
                info["logs"] = [w.log.read_text(errors="replace") for w in cluster.workers]
            finally:
                cluster.kill_all()
        rows = await read_rows(store, job_of, expected)
        fig = figures(rows, (ended or time.monotonic()) - began)
        if ended is None:
            fig.notes.append(f"timed out after {opts.timeout:.0f}s")
    finally:
        await store.close()
    return fig, rows, info, cluster


_baselines: dict[tuple[Any, ...], float] = {}
_undisturbed_per_minute: dict[tuple[Any, ...], int] = {}


async def _baseline(key: tuple[Any, ...], run: Callable[[], Awaitable[Figures]]) -> float:
    if key not in _baselines:
        fig = await run()
        _baselines[key] = fig.throughput
        line = f"  undisturbed: {fig.jobs} jobs in {fig.elapsed:.1f}s = {fig.throughput:.1f} jobs/s"
        print(line, flush=True)
    return _baselines[key]


# --- embedding provider faults ---------------------------------------------------------------------------


def fault_windows(opts: Options, horizon: float = 900.0) -> list[Window]:
    """Windows until `horizon` s (or `opts.max_faults` of them), the kinds in turn, alternating an outage
    (every request fails for 15 s: longer than the in-call retries) and a flaky stretch (half of the
    requests fail for 6 s), separated by `--every` (default 8-12 s) of normal service."""
    windows: list[Window] = []
    t = 3.0
    while t < horizon and more_faults(opts, len(windows)):
        kind = KINDS[len(windows) % len(KINDS)]
        outage = (len(windows) // len(KINDS)) % 2 == 0
        length = 15.0 if outage else 6.0
        windows.append(Window(t, t + length, kind, 1.0 if outage else 0.5))
        low, high = opts.every or (8.0, 12.0)
        t += length + random.uniform(low, high)
    return windows


def _count(windows: list[Window], label: str, outage: bool) -> str:
    """How many windows of the kind, and how long they lasted: `4 outages of 15 s`."""
    chosen = [w for w in windows if (w.rate >= 1.0) == outage]
    lengths = "/".join(f"{x:g}" for x in sorted({round(w.end - w.start, 1) for w in chosen}))
    return f"{len(chosen)} {label} of {lengths} s" if chosen else f"0 {label}"


def embed_variables(server: FaultServer, rpm: float) -> dict[str, str]:
    return {
        "CHAOS_EMBEDDER": "openai",
        "INGESTQ_EMBEDDER_BASE_URL": server.url,
        "INGESTQ_EMBEDDER_DIMENSION": str(server.dimension),
        "INGESTQ_EMBEDDER_TIMEOUT": f"{CLIENT_TIMEOUT:g}",
        "INGESTQ_EMBEDDER_REQUESTS_PER_MINUTE": f"{rpm:g}",
    }


async def embed_faults(
    env: Env,
    opts: Options,
    name: str = "embed-faults",
    windows: list[Window] | None = None,
    rpm: float = RPM,
) -> Result:
    lease = opts.lease or 15.0
    n = _jobs(opts, name)
    sources = generate_documents(env.root / "docs", n)

    async def load(server: FaultServer, label: str) -> tuple[Figures, IngestRows, dict[str, Any]]:
        with server:
            fig, rows, info, _ = await run_ingest(
                env, opts, label, lease, sources, embed_variables(server, rpm), on_begin=server.begin
            )
        return fig, rows, info

    base = None
    key = (env.backend, name, n, opts.workers, opts.concurrency, rpm)
    if opts.baseline:

        async def undisturbed() -> Figures:
            server = FaultServer()
            fig = (await load(server, "baseline"))[0]
            # without faults the workers ask for more than the limit: this is where it binds
            _undisturbed_per_minute[key] = server.max_per_window(60.0)
            return fig

        base = await _baseline(key, undisturbed)

    plan = windows if windows is not None else fault_windows(opts)
    server = FaultServer(windows=plan, stall=CLIENT_TIMEOUT + 1)
    fig, _, info = await load(server, name)
    met = [w for w in server.windows if w.start < server.now()]
    answered = server.answered()
    per_minute = server.max_per_window(60.0)
    quiet = _undisturbed_per_minute.get(key)
    twice = sum(1 for c in server.embedded.values() if c > 1)
    pauses = sum(log.count("not claiming ingestq.ingest") for log in info["logs"])
    recovery = server.recovery()
    resumed = _resumed(server, info["logs"])
    faults = (
        f"{len(met)} windows ({_count(met, 'outages', True)}, {_count(met, 'flaky', False)}); "
        "provider answered "
        + ", ".join(f"{k} {answered[k]}" for k in ("ok", *KINDS) if answered[k])
        + f"; limit {rpm:g}/min shared by {opts.workers} workers: at most {per_minute} requests in any 60 s"
        + (f" ({quiet} undisturbed)" if quiet is not None else "")
        + f"; workers paused ingestion {pauses} times"
    )
    res = Result(
        name,
        env.backend,
        n,
        faults,
        fig,
        (
            f"first answer ≤ {max(recovery):.1f}s after an outage ended, every paused worker claiming "
            f"again ≤ {max(resumed):.1f}s after"
            if recovery and resumed
            else "no outage met"
        ),
        base,
        extra={
            "max_per_minute": per_minute,
            "undisturbed_per_minute": quiet,
            "answered": dict(answered),
            "embedded_twice": twice,
        },
    )
    fig.notes.append(f"texts embedded twice at the provider: {twice}")
    res.checks["zero lost"] = fig.lost == 0
    res.checks["nothing indexed twice"] = fig.finished_twice == 0
    res.checks["no attempt spent on provider faults"] = fig.attempts_burned == 0
    res.checks[f"≤ {rpm:g} requests in any 60 s at the provider"] = max(per_minute, quiet or 0) <= rpm
    res.checks["workers exit 0"] = all(c == 0 for c in info["exit_codes"])
    return res


_RESUMED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO ingestq\.worker: ingestq\.ingest available again"
)


def _resumed(server: FaultServer, logs: list[str]) -> list[float]:
    """For each outage: seconds from its end to the last worker that paused in it claiming again (the
    workers' log lines, local time to the millisecond)."""
    times = []
    for log in logs:
        for line in log.splitlines():
            m = _RESUMED.match(line)
            if m:
                when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                times.append(when - server.wall0)
    out = []
    windows = sorted(server.windows, key=lambda w: w.start)
    for i, w in enumerate(windows):
        if w.rate < 1.0:
            continue
        until = windows[i + 1].start if i + 1 < len(windows) else float("inf")
        after = [t - w.end for t in times if w.start <= t < until]
        if after:
            out.append(max(0.0, max(after)))
    return out


# --- parser children killed ------------------------------------------------------------------------------

_SITECUSTOMIZE = '''\
"""bench/chaos parser-kills, in parser children only: a document holding the poison marker kills its
parser every time; one holding the kill-once marker kills it the first time it is parsed (a flag file
remembers it), as a SIGKILL from outside would mid-document."""
import hashlib
import os
import signal
import sys

_POISON = os.environ.get("CHAOS_POISON", "").encode()
_ONCE = os.environ.get("CHAOS_KILL_ONCE", "").encode()
_FLAGS = os.environ.get("CHAOS_KILL_ONCE_DIR", "")
if _POISON and "ingestq.pipeline.sandbox" in sys.orig_argv:
    from ingestq.pipeline.parse import base as _base

    _real = _base.parse_document

    def parse_document(doc, options=None):
        if _POISON in doc.data:
            os.kill(os.getpid(), signal.SIGKILL)
        if _ONCE and _ONCE in doc.data:
            flag = os.path.join(_FLAGS, hashlib.sha256(doc.data).hexdigest())
            if not os.path.exists(flag):
                open(flag, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
        return _real(doc, options)

    _base.parse_document = parse_document
'''


def parser_children(pid: int) -> list[int]:
    """The worker's live parser processes (its children running `ingestq.pipeline.sandbox`)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                if b"ingestq.pipeline.sandbox" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    found.append(int(kid))
            except OSError:
                continue
    return found


async def parser_kills(
    env: Env, opts: Options, name: str = "parser-kills", sets: tuple[str, ...] = ("html", "markdown")
) -> Result:
    lease = opts.lease or 15.0
    n = _jobs(opts, name)
    poison = env.root / "poison.md"
    poison.write_text(f"# Poison\n\nThis document kills its parser: {POISON}.\n")
    once = [env.root / f"once{k}.md" for k in range(KILL_ONCE)]
    for k, doc in enumerate(once):
        doc.write_text(f"# Killed once\n\nDocument {k} kills its first parser: {KILL_ONCE_MARK} {k}.\n")
    sources = [*corpus_documents(n - 1 - len(once), sets)]
    step = max(1, len(sources) // (len(once) + 2))
    for k, doc in enumerate(once):  # spread through the queue
        sources.insert(step * (k + 1) + k, doc)
    poison_at = len(sources) // 2 + 1
    sources.insert(poison_at, poison)
    once_at = {sources.index(doc) for doc in once}
    site = env.root / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    variables = {
        "PYTHONPATH": pythonpath,
        "CHAOS_POISON": POISON,
        "CHAOS_KILL_ONCE": KILL_ONCE_MARK,
        "CHAOS_KILL_ONCE_DIR": "",  # set per run: each run's documents are killed once
    }

    def fresh_flags(label: str) -> dict[str, str]:
        flags = env.root / f"flags-{label}"
        flags.mkdir(exist_ok=True)
        return {**variables, "CHAOS_KILL_ONCE_DIR": str(flags)}

    base = None
    if opts.baseline:

        async def undisturbed() -> Figures:
            label = "baseline"
            return (
                await run_ingest(env, opts, label, lease, sources, fresh_flags(label), fails={poison_at})
            )[0]

        base = await _baseline((env.backend, name, n, opts.workers, opts.concurrency), undisturbed)

    async def fault(cluster: Cluster, done: asyncio.Task[float | None], info: dict[str, Any]) -> None:
        info["kills"] = 0
        while more_faults(opts, info["kills"]):
            low, high = opts.every or EVERY
            await asyncio.wait({done}, timeout=random.uniform(low, high))
            if done.done():
                return
            # any child, busy or idle: aiming at busy ones picks the slowest documents every time,
            # and a document killed on each of its attempts is quarantined like a poison one
            children = [c for w in cluster.live() for c in parser_children(w.proc.pid)]
            if children:
                try:
                    os.kill(random.choice(children), signal.SIGKILL)
                    info["kills"] += 1
                except ProcessLookupError:
                    pass

    fig, rows, info, cluster = await run_ingest(
        env, opts, name, lease, sources, fresh_flags(name), fault, fails={poison_at}
    )
    poison_job = next(job for job, doc in rows.job_of.items() if doc == f"d{poison_at:05d}")
    pj, pd = rows.jobs.get(poison_job), rows.docs.get(f"d{poison_at:05d}")
    once_ids = {f"d{k:05d}" for k in once_at}
    once_jobs = [job for job, doc in rows.job_of.items() if doc in once_ids]
    once_ok = sum(
        1
        for j in once_jobs
        if j in rows.jobs and rows.jobs[j].state.value == "succeeded" and rows.jobs[j].attempt == 2
    )
    hit = sum(
        1
        for job_id, job in rows.jobs.items()
        if job_id != poison_job and job_id not in once_jobs
        for record in job.errors
        if "SIGKILL" in record.message
    )
    quarantined_innocent = [
        rows.docs[doc].source
        for job, doc in rows.job_of.items()
        if job != poison_job and doc in rows.docs and rows.docs[doc].status.value == "quarantined"
    ]
    if quarantined_innocent:
        fig.notes.append(f"quarantined though innocent (killed on every attempt): {quarantined_innocent}")
    alive = sum(1 for w in cluster.workers if w.how == "sigterm" and w.code == 0)
    quarantined = pd is not None and pd.status.value == "quarantined"
    kills = info.get("kills", 0)
    low, high = opts.every or EVERY
    faults = (
        f"{kills} parser SIGKILLs at random (every {low:g}-{high:g} s), {hit} of them mid-document; "
        f"{len(once)} documents kill their first parser; 1 poison document kills every parser"
    )
    poison_line = (
        f"poison quarantined after {pj.attempt} attempts: {pd.error}"
        if quarantined and pj is not None and pd is not None
        else f"poison NOT quarantined: {pd.status.value if pd else 'no row'}"
    )
    recovery = (
        f"{alive}/{opts.workers} workers served on; killed-once documents indexed on attempt 2: "
        f"{once_ok}/{len(once)}; {poison_line}"
    )
    res = Result(name, env.backend, n, faults, fig, recovery, base)
    res.extra.update(kills=kills, hit=hit, poison_attempts=pj.attempt if pj else None)
    res.checks["zero lost"] = fig.lost == 0
    res.checks["nothing indexed twice"] = fig.finished_twice == 0
    spent = pj is not None and pj.attempt == pj.max_attempts
    res.checks["poison quarantined after its attempts"] = quarantined and spent
    res.checks["killed-once documents indexed on their second attempt"] = once_ok == len(once)
    res.checks["reason names the crash"] = pd is not None and "SIGKILL" in (pd.error or "")
    res.checks["every worker served on, exit 0"] = alive == opts.workers
    return res
