"""`multi-host`: workers on two hosts (network namespaces), PostgreSQL on a third, one host cut off.

1. Exactly once across hosts: jobs drain with both hosts' workers claiming from one queue; every job
   runs once, at attempt 1, and both hosts take part.
2. A partition: while the hosts work through a second batch, host h1's link goes down for longer than
   the lease (2 × lease + 2 s). h2's rescuer puts h1's jobs back in the queue, and they run again as a
   new attempt (on h2, or on h1 once it is back: they queue behind the jobs already due). When the link
   returns, h1's late writes (the outcomes of jobs it no longer owns, its heartbeats for them) reach the
   database and are refused by the fence (owner and attempt): h1's workers log each refused outcome,
   and the rows keep the later attempt. Nothing is lost, and no job runs more often than its attempt
   count says (a rescued job runs again as a new attempt, which the lease rules allow). A claim h1 sent
   during the cut reaches the database only when the link returns, with leases already past: the
   worker confirms those by a heartbeat before it runs them (reported as "of a claim delivered late"
   if any such job ran twice).

Needs root (network namespaces): the scenario fails with the reason otherwise, and the test skips.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos.harness import (
    INGESTQ,
    MARKER,
    Cluster,
    Worker,
    all_jobs,
    analyse,
    insert_probes,
    wait_done,
    with_store,
)
from bench.chaos.netns import NetPgServer, Network
from bench.chaos.scenarios import Env, Options, Result, worker_args
from ingestq.settings import Settings
from ingestq.store import open_store

REFUSED = re.compile(rb"job (\d+): outcome \S+ not recorded, another worker holds the job now")


@dataclass
class HostPlan:
    """Sizes of one run (the test uses small ones; `python -m bench.chaos multi-host` the defaults)."""

    exactly_once_jobs: int = 2000
    cut_jobs: int = 1500
    seconds: float = 0.2
    per_host: int = 2  # workers on each host
    concurrency: int = 8
    lease: float = 5.0
    grace: float = 10.0
    timeout: float = 180.0
    refusal_within: float = 90.0  # after the link returns: TCP retransmits back off up to ~25 s

    @property
    def cut_for(self) -> float:
        # expiry (≤ lease after the last heartbeat) + a rescue pass (lease/3) + time for h2 to claim
        return 2 * self.lease + 2.0


class HostCluster(Cluster):
    """Cluster whose workers each run on a host (in its network namespace)."""

    def __init__(self, url: str, root: Path, args: list[str], net: Network) -> None:
        super().__init__(url, root, args)
        self.net = net
        self.host_of: dict[int, str] = {}

    def start_on(self, host: str) -> Worker:
        index = len(self.workers)
        wdir = self.root / f"w{index}-{host}"
        wdir.mkdir(parents=True, exist_ok=True)
        log = wdir / "worker.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "INGESTQ_PROBE_MARKER_DIR": str(wdir),
            "INGESTQ_EMBEDDER": os.environ.get("CHAOS_EMBEDDER", "fake"),
        }
        cmd = [*self.net.run_in(host), INGESTQ, "--db", self.url, "worker", *self.args]
        with open(log, "ab") as out:
            # `ip netns exec` execs the program: the pid (and the signals) are the worker's own
            proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        worker = Worker(index, proc, wdir / MARKER, log, self.now())
        self.workers.append(worker)
        self.host_of[index] = host
        return worker

    def on(self, host: str) -> set[int]:
        return {i for i, h in self.host_of.items() if h == host}

    def refused(self, host: str) -> set[int]:
        """Jobs whose outcome a worker on `host` was refused (fenced: another worker holds the job)."""
        found: set[int] = set()
        for w in self.workers:
            if self.host_of.get(w.index) == host and w.log.exists():
                found |= {int(m.group(1)) for m in REFUSED.finditer(w.log.read_bytes())}
        return found


async def _until(predicate: Any, within: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return False


async def run_multi_host(plan: HostPlan, root: Path) -> Result:
    """Both phases on a network made for the run, removed afterwards (also on failure)."""
    net = Network()
    server: NetPgServer | None = None
    try:
        net.create()
        server = NetPgServer(net)
        return await _phases(plan, root, net, server)
    finally:
        if server is not None:
            server.close()
        net.close()


async def _phases(plan: HostPlan, root: Path, net: Network, server: NetPgServer) -> Result:
    url = server.create_db()
    await with_store(url, "migrate")
    store = open_store(Settings(database_url=url, auto_migrate=False))
    await store.open()
    args = worker_args(Options(concurrency=plan.concurrency, grace=plan.grace), plan.lease)
    cluster = HostCluster(url, root, args, net)
    info: dict[str, Any] = {}
    stop = asyncio.Event()
    tail: asyncio.Task[None] | None = None
    try:
        for host in net.hosts:
            for _ in range(plan.per_host):
                cluster.start_on(host)
        for w in list(cluster.workers):
            await cluster.wait_started(w)
        tail = asyncio.create_task(cluster.tailer(stop))

        # 1. exactly once across hosts
        first = await insert_probes(store, plan.exactly_once_jobs, plan.seconds)
        t1 = await wait_done(cluster, store, len(first), plan.timeout)
        info["phase1_done"] = t1 is not None
        cluster.tail_once()
        phase1_events = list(cluster.events)

        # 2. cut h1 off while both hosts work through the second batch
        h1 = cluster.on("h1")
        second = await insert_probes(store, plan.cut_jobs, plan.seconds)
        second_ids = set(second)
        busy = plan.per_host * plan.concurrency

        async def h1_busy() -> bool:
            cluster.tail_once()
            n = sum(
                1 for e in cluster.events if e.worker in h1 and e.event == "start" and e.job in second_ids
            )
            return n >= busy

        await _until(h1_busy, 30)
        cut_at = cluster.now()
        net.cut("h1")
        info["cut_at"] = cut_at
        await asyncio.sleep(plan.cut_for)
        net.restore("h1")
        restored_at = cluster.now()
        info["restored_at"] = restored_at
        total = len(first) + len(second)
        t_end = await wait_done(cluster, store, total, plan.timeout)
        cluster.tail_once()

        # Which runs of h1 were lost to another worker (the row's attempt moved past them): those it held
        # across the cut, and any claim of its that reached the database only when the link returned.
        final = await all_jobs(store)
        h1_runs = {(e.job, e.attempt): e.t for e in cluster.events if e.worker in h1 and e.event == "start"}
        h1_done = {(e.job, e.attempt) for e in cluster.events if e.worker in h1 and e.event == "done"}
        lost = {run for run in h1_runs if run[0] in final and final[run[0]].attempt > run[1]}
        cut_lost = {run for run in lost if h1_runs[run] < cut_at}
        # Rescued during the cut: their lease-expiry record is stamped before the link returned, when only
        # h2's workers could reach the database. They run again (a new attempt) on whichever worker claims
        # them next: h2's, or h1's once it is back (a rescued job queues behind the jobs already due).
        rescued = {
            (j, a)
            for j, a in cut_lost
            if any(r.attempt == a and r.at.timestamp() - cluster.wall0 < restored_at for r in final[j].errors)
        }
        starts: dict[int, list[tuple[float, int]]] = {}
        for e in cluster.events:
            if e.event == "start":
                starts.setdefault(e.job, []).append((e.t, e.attempt))
        # h1 finished these and so tried to write their outcomes: each must be refused
        must_refuse = {job for job, attempt in lost if (job, attempt) in h1_done}

        async def late_writes_refused() -> bool:
            return must_refuse <= cluster.refused("h1")

        refused_in_time = await _until(late_writes_refused, plan.refusal_within, step=0.2)
        info["refused_after"] = cluster.now() - restored_at if refused_in_time else None
        info["exit_codes"] = await cluster.stop_all()
        stop.set()
        await tail
        tail = None
        cluster.tail_once()
        rows = await all_jobs(store)
        ids = [*first, *second]
        fig = analyse(cluster, rows, ids, t_end if t_end is not None else cluster.now())
        if t_end is None:
            fig.notes.append(f"timed out after {plan.timeout:.0f}s")
    finally:
        stop.set()
        if tail is not None:
            await asyncio.gather(tail, return_exceptions=True)
        cluster.kill_all()
        await store.close()

    refused = cluster.refused("h1")
    late_claims = len(lost) - len(cut_lost)
    info.update(cut_lost=len(cut_lost), rescued=len(rescued), refused=len(refused), late_claims=late_claims)
    rescue_starts = [
        min((t for t, att in starts.get(job, []) if att > attempt), default=float("nan")) - cut_at
        for job, attempt in rescued
    ]
    res = Result(
        "multi-host",
        "pg",
        len(ids),
        f"h1 cut off {plan.cut_for:g}s (lease {plan.lease:g}s), {plan.per_host}+{plan.per_host} workers",
        fig,
        (
            f"h1's {len(cut_lost)} jobs rescued by h2, run again ≤ {max(rescue_starts, default=0):.1f}s "
            f"after the cut; {len(refused)} late outcomes refused"
            + (f" ({late_claims} of a claim delivered late)" if late_claims else "")
            + " "
            + (
                f"≤ {info['refused_after']:.1f}s after the link returned"
                if info["refused_after"] is not None
                else "(not seen)"
            )
        ),
        None,
        extra=info,
    )
    once = _exactly_once(phase1_events, set(first))
    res.checks["phase 1: every job ran exactly once, at attempt 1"] = info["phase1_done"] and once
    res.checks["phase 1: both hosts ran jobs"] = {cluster.host_of[e.worker] for e in phase1_events} == {
        "h1",
        "h2",
    }
    res.checks["zero lost"] = fig.lost == 0
    res.checks["every re-run counted as an attempt"] = fig.uncounted_reruns == 0
    res.checks["no attempt started twice"] = fig.same_attempt_twice == 0
    res.checks["no attempt on two workers at once"] = fig.concurrent == 0
    res.checks["h1's jobs rescued by h2 during the cut"] = bool(cut_lost) and rescued == cut_lost
    res.checks["every rescued job ran again"] = all(t == t for t in rescue_starts)  # nan: never
    res.checks["h1's late outcomes refused by the fence"] = bool(must_refuse) and refused_in_time
    res.checks["only outcomes of jobs h1 lost were refused"] = refused == must_refuse
    res.checks["workers exit 0"] = all(c == 0 for c in info["exit_codes"])
    return res


def _exactly_once(events: list[Any], ids: set[int]) -> bool:
    starts = [(e.job, e.attempt) for e in events if e.event == "start" and e.job in ids]
    return len(starts) == len(ids) and {job for job, _ in starts} == ids and all(a == 1 for _, a in starts)


async def multi_host(env: Env, opts: Options, name: str = "multi-host") -> Result:
    plan = HostPlan(
        exactly_once_jobs=opts.jobs if opts.jobs is not None else HostPlan.exactly_once_jobs,
        seconds=opts.seconds,
        concurrency=opts.concurrency,
        lease=opts.lease or HostPlan.lease,
        grace=opts.grace,
        timeout=opts.timeout,
    )
    return await run_multi_host(plan, env.scratch(name))
