"""The `ceiling` section of `make bench`: ingestion with a fast embedder, the pipeline's own ceiling.

An OpenAI-compatible `/v1/embeddings` server (tests/pipeline/http_embed_server.py) runs in a process of
its own on 127.0.0.1 and answers in about a millisecond with deterministic vectors, as a GPU box or a
hosted API would: the model is out of the way and what is left is ingestq (parse, chunk, HTTP, store,
queue). Issue 8 (defect 6) was found in exactly this set-up: jobs rescued from a live worker as "lease
expired: worker lost", retried, and failed after 3 attempts.

Per backend (SQLite file; PostgreSQL with pgvector) and worker process count, on a fresh database:

1. pre-load: `ingestq ingest PRE --wait` of a few long documents (~12,000 chunks), untimed;
2. timed: `ingestq ingest DOCS --wait` of N small generated Markdown files (the command of the report);
   with 2 processes, an `ingestq worker` started beforehand runs alongside it on the same queue.
   Wall time is from launching `ingest` to its exit; CPU is each process's (wait4: its parser process
   included), and the embed server's;
3. every ingestion job of step 2 is read back: state, attempt, error history (a lease mentioned?), and
   the most ingestion jobs seen running at once per worker (sampled every 0.1 s) against the cap.

    python -m bench.fast_embed                       # 8,000 files, 1 and 2 processes, both backends
    python -m bench.fast_embed --docs 500 --only sqlite --procs 1
    python -m bench.fast_embed --profile 2000        # only: cProfile of `ingest --wait` (SQLite)
    python -m bench.fast_embed --render OUT.json     # only: the section of an earlier --out OUT.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.harness import ROOT
from bench.machine import describe, loadavg, tree_cpu_seconds

SERVER = ROOT / "tests" / "pipeline" / "http_embed_server.py"
INGEST_KIND = "ingestq.ingest"  # ingestq.pipeline.ingest.kinds (not imported: cheap to run on old code)
DOCS = 8_000
PRE_DOCS = 120  # x ~100 chunks of CHUNK_TOKENS: ~12,000 chunks already in the store
PRE_SECTIONS = 50
SECTIONS = 3
CHUNK_TOKENS = 64
DIMENSION = 384
INGEST_CAP = 64  # Settings.ingest_concurrency's default
_WORDS = tuple(
    [
        "queue",
        "worker",
        "lease",
        "chunk",
        "vector",
        "embed",
        "parse",
        "markdown",
        "store",
        "index",
        "search",
        "retry",
        "backoff",
        "commit",
        "batch",
        "sqlite",
        "postgres",
        "document",
        "heading",
        "paragraph",
        "token",
        "cache",
        "model",
        "server",
        "client",
        "request",
        "answer",
    ]
)
Log = Callable[[str], None]


def small_markdown(number: int, sections: int = SECTIONS) -> str:
    """A small note, unique per `number` (so nothing comes from the embedding cache): a title and
    `sections` sections of ~40 words each."""
    rnd = random.Random(number)
    out = [f"# Note {number}", ""]
    for s in range(sections):
        words = " ".join(rnd.choice(_WORDS) for _ in range(40))
        out += [f"## Section {s}", "", f"{words} (note {number}, part {s}).", ""]
    return "\n".join(out)


def write_markdown(folder: Path, count: int, sections: int = SECTIONS, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        (folder / f"note-{i:06d}.md").write_text(small_markdown(i, sections), encoding="utf-8")
    return folder


@contextlib.contextmanager
def embed_server(dimension: int = DIMENSION) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The fast embedder in a process of its own: (its base URL for OpenAI clients, the process)."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--dimension", str(dimension)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the embed server did not start (printed {url!r})")
        yield url + "/v1", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def ingest_env(database_url: str, embed_url: str, dimension: int = DIMENSION) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    env.update(
        PYTHONUNBUFFERED="1",
        INGESTQ_DATABASE_URL=database_url,
        INGESTQ_EMBEDDER="openai",
        INGESTQ_EMBEDDER_BASE_URL=embed_url,
        INGESTQ_EMBEDDER_MODEL="text-embedding-3-small",
        INGESTQ_EMBEDDER_DIMENSION=str(dimension),
        INGESTQ_CHUNK_TOKENS=str(CHUNK_TOKENS),
    )
    return env


def ingestq_bin() -> str:
    exe = Path(sys.executable).parent / "ingestq"
    return str(exe if exe.exists() else ROOT / ".venv" / "bin" / "ingestq")


def _query(database_url: str, sql_sqlite: str, sql_pg: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        try:
            return list(conn.execute(sql_sqlite, args).fetchall())
        finally:
            conn.close()
    with psycopg.connect(database_url, autocommit=True) as pg:
        return list(pg.execute(sql_pg, args).fetchall())


def last_job_id(database_url: str) -> int:
    sql = "SELECT coalesce(max(id), 0) FROM ingestq_jobs"
    return int(_query(database_url, sql, sql, ())[0][0])


@dataclass
class Outcomes:
    """What became of the ingestion jobs with an id above a mark."""

    jobs: int = 0
    succeeded: int = 0
    at_attempt_1: int = 0
    max_attempt: int = 0
    lease_errors: int = 0
    """Jobs whose error history mentions a lease (rescued as if their worker were lost)."""
    chunks: int = 0
    problems: list[str] = field(default_factory=list)
    """A few unsuccessful or retried jobs, for the log."""

    @property
    def clean(self) -> bool:
        return self.jobs > 0 and self.succeeded == self.at_attempt_1 == self.jobs and not self.lease_errors


def outcomes(database_url: str, after_id: int) -> Outcomes:
    sql = (
        "SELECT id, state, attempt, errors, result, document_id FROM ingestq_jobs "
        "WHERE kind = {p} AND id > {p}"
    )
    rows = _query(database_url, sql.format(p="?"), sql.format(p="%s"), (INGEST_KIND, after_id))
    found = Outcomes()
    for job_id, state, attempt, errors, result, document_id in rows:
        history = errors if isinstance(errors, list) else json.loads(errors or "[]")
        outcome = result if isinstance(result, dict) or result is None else json.loads(result)
        found.jobs += 1
        found.succeeded += state == "succeeded"
        found.at_attempt_1 += attempt == 1
        found.max_attempt = max(found.max_attempt, int(attempt))
        leased = any("lease" in str(e.get("message", "")).lower() for e in history)
        found.lease_errors += leased
        if isinstance(outcome, dict):
            found.chunks += int(outcome.get("chunks", 0) or 0)
        if (state != "succeeded" or attempt != 1 or leased) and len(found.problems) < 5:
            last = history[-1].get("message") if history else None
            found.problems.append(f"job {job_id} ({document_id}): {state} at attempt {attempt}: {last}")
    return found


class RunningSampler:
    """Every `period` s, how many ingestion jobs each worker (lease owner) holds running; the most seen."""

    def __init__(self, database_url: str, period: float = 0.1) -> None:
        self.database_url = database_url
        self.period = period
        self.most_per_worker: dict[str, int] = {}
        self.most_at_once = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        sql = (
            "SELECT lease_owner, count(*) FROM ingestq_jobs WHERE state = 'running' AND kind = {p} "
            "GROUP BY lease_owner"
        )
        rows = _query(self.database_url, sql.format(p="?"), sql.format(p="%s"), (INGEST_KIND,))
        self.samples += 1
        self.most_at_once = max(self.most_at_once, sum(int(n) for _, n in rows))
        for owner, n in rows:
            key = str(owner)
            self.most_per_worker[key] = max(self.most_per_worker.get(key, 0), int(n))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with contextlib.suppress(sqlite3.Error, psycopg.Error):  # a busy moment costs one sample
                self._sample()

    def __enter__(self) -> RunningSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def most_by_one_worker(self) -> int:
        return max(self.most_per_worker.values(), default=0)


def wait_cpu(proc: subprocess.Popen[Any], timeout: float) -> float:
    """Wait for `proc`; its user+system CPU seconds (wait4: with its reaped children)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"{proc.args!r} still running after {timeout:g} s")


def run_ingest(folder: Path, env: dict[str, str], log: Path, timeout: float) -> tuple[float, float]:
    """`ingestq ingest FOLDER --wait`: (wall seconds, CPU seconds); raises if it did not exit 0."""
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [ingestq_bin(), "ingest", str(folder), "--wait"], env=env, stdout=out, stderr=out
        )
        cpu = wait_cpu(proc, timeout)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"ingestq ingest exited {proc.returncode}: {log.read_text()[-1500:]}")
    return wall, cpu


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [ingestq_bin(), "worker", "--queues", "ingest"], env=env, stdout=out, stderr=out
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then its CPU seconds."""
    proc.terminate()
    return wait_cpu(proc, 60)


def one_run(
    backend: str, database_url: str, procs: int, docs: Path, pre: Path, workdir: Path, log: Log
) -> dict[str, Any]:
    logfile = workdir / f"{backend}-x{procs}.log"
    with embed_server() as (embed_url, server):
        env = ingest_env(database_url, embed_url)
        run_ingest(pre, env, logfile, 1800)
        preloaded = outcomes(database_url, 0).chunks
        mark = last_job_id(database_url)
        server_cpu = tree_cpu_seconds(server.pid)
        load_before = loadavg()
        workers = [start_worker(env, logfile) for _ in range(procs - 1)]
        try:
            with RunningSampler(database_url) as sampler:
                wall, ingest_cpu = run_ingest(docs, env, logfile, 3600)
        finally:
            worker_cpu = [stop_worker(w) for w in workers]
        load_after = loadavg()
        server_cpu = tree_cpu_seconds(server.pid) - server_cpu
    found = outcomes(database_url, mark)
    result = {
        "backend": backend,
        "procs": procs,
        "preloaded_chunks": preloaded,
        "wall_s": wall,
        "docs_per_s": found.jobs / wall,
        "chunks_per_s": found.chunks / wall,
        "cpu_s": [ingest_cpu, *worker_cpu],
        "server_cpu_s": server_cpu,
        "most_running_one_worker": sampler.most_by_one_worker,
        "most_running_at_once": sampler.most_at_once,
        "workers_seen": len(sampler.most_per_worker),
        "load_before": load_before,
        "load_after": load_after,
        **asdict(found),
        "all_at_attempt_1": found.clean,
    }
    log(
        f"ceiling {backend} x{procs}: {found.jobs} docs, {found.chunks} chunks in {wall:.1f} s = "
        f"{result['docs_per_s']:.1f} docs/s, {result['chunks_per_s']:.0f} chunks/s; succeeded "
        f"{found.succeeded}, attempt 1 {found.at_attempt_1}, lease errors {found.lease_errors}; "
        f"cpu {'+'.join(f'{c:.1f}' for c in result['cpu_s'])} s, server {server_cpu:.1f} s; most running "
        f"{sampler.most_by_one_worker}/worker; load {load_before[0]:.2f}->{load_after[0]:.2f}"
        + (f"; {found.problems}" if found.problems else "")
    )
    return result


@contextlib.contextmanager
def _database(backend: str, workdir: Path, pg_admin: str | None) -> Iterator[str]:
    if backend == "sqlite":
        path = workdir / f"ceiling-{time.monotonic_ns()}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    assert pg_admin is not None
    name = f"ceiling_{time.time_ns()}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(pg_admin)  # keeps query parameters such as a Unix-socket host
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        yield url
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(
    docs: int = DOCS,
    procs: tuple[int, ...] = (1, 2),
    backends: tuple[str, ...] = ("sqlite", "postgresql"),
    log: Log = print,
) -> dict[str, Any]:
    """Every (backend, process count) once, on a fresh database each; PostgreSQL is an embedded server
    with pgvector (the machine's has none here; BENCH_CEILING_PG_URL names another one)."""
    from bench import pgserver

    workdir = Path(tempfile.mkdtemp(prefix="ingestq-ceiling-"))
    corpus = write_markdown(workdir / "docs", docs)
    pre = write_markdown(workdir / "pre", PRE_DOCS, PRE_SECTIONS, start=10_000_000)
    pg: pgserver.PgChoice | None = None
    pg_note = ""
    if "postgresql" in backends:
        given = os.environ.get("BENCH_CEILING_PG_URL")
        try:
            pg = (
                pgserver.PgChoice(given, pgserver._describe(given, "BENCH_CEILING_PG_URL"), lambda: None)
                if given
                else pgserver.start_embedded()
            )
        except Exception as exc:
            pg_note = f"PostgreSQL not measured: {exc}"
            log(pg_note)
    runs: list[dict[str, Any]] = []
    try:
        for backend in backends:
            if backend == "postgresql" and pg is None:
                continue
            for n in procs:
                with _database(backend, workdir, pg.url if pg else None) as url:
                    try:
                        runs.append(one_run(backend, url, n, corpus, pre, workdir, log))
                    except Exception as exc:
                        log(f"ceiling {backend} x{n}: ERROR {type(exc).__name__}: {str(exc)[:300]}")
                        runs.append({"backend": backend, "procs": n, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "docs": docs,
        "pre_docs": PRE_DOCS,
        "chunk_tokens": CHUNK_TOKENS,
        "dimension": DIMENSION,
        "postgresql": pg.description if pg else pg_note,
        "runs": runs,
    }


def section(c: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md's section for `measure`'s results (with the `command` and `started` it ran)."""
    m = describe()
    out = [
        "## Ingestion ceiling: a fast embedder",
        "",
        "ingestq's own ceiling, with the model out of the way: an OpenAI-compatible `/v1/embeddings`",
        "server in a process of its own on 127.0.0.1 (tests/pipeline/http_embed_server.py: deterministic",
        f"{c['dimension']}-dimension vectors, about a millisecond per request of 64 texts) stands for a GPU",
        "box or a hosted API. The set-up of issue 8, defect 6, where jobs were rescued from their live",
        "worker as 'lease expired: worker lost' and failed after 3 attempts.",
        "",
        f"- Command: `{c.get('command', '?')}`; {c.get('started', '?')}",
        f"- Machine: {m['cores']} cores (shared with other engineers' test runs), {m['cpu']}, Python "
        f"{m['python']}; PostgreSQL: {c['postgresql']}",
        f"- Workload: `ingestq ingest DIR --wait` of {c['docs']:,} small generated Markdown files (a title,",
        f"  3 sections of ~40 words, INGESTQ_CHUNK_TOKENS={c['chunk_tokens']}) onto a fresh store pre-loaded",
        f"  by an untimed `ingestq ingest --wait` of {c['pre_docs']} long ones (chunks column). With 2",
        "  processes an `ingestq worker --queues ingest` (defaults: concurrency 100, ingest cap 64) runs",
        "  alongside on the same queue. Wall time: launch of `ingest` to its exit. CPU: each process",
        "  (wait4), `ingest` first; the embed server's apart.",
        "- Attempts: every ingestion job read back after the run; 'all at attempt 1' means every one",
        "  succeeded at attempt 1 and no error history mentions a lease. Most running: the most ingestion",
        "  jobs one worker held at once, sampled every 0.1 s (cap 64).",
        "",
        "| backend | processes | pre-loaded chunks | documents | chunks | wall s | docs/s | chunks/s "
        "| all at attempt 1 | max attempt | most running (one worker) | CPU s (worker processes) "
        "| CPU s (embed server) | load 1 min before→after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in c["runs"]:
        name = "SQLite" if r["backend"] == "sqlite" else "PostgreSQL"
        if r.get("error"):
            out.append(
                f"| {name} | {r['procs']} | — | — | — | — | — | — | error: {r['error'][:120]} "
                "| — | — | — | — | — |"
            )
            continue
        attempt1 = (
            "yes"
            if r["all_at_attempt_1"]
            else (
                f"**no**: {r['jobs'] - r['succeeded']:,} failed, "
                f"{r['jobs'] - r['at_attempt_1']:,} past attempt 1, "
                f"{r['lease_errors']:,} with a lease error"
            )
        )
        out.append(
            f"| {name} | {r['procs']} | {r['preloaded_chunks']:,} | {r['jobs']:,} | {r['chunks']:,} "
            f"| {r['wall_s']:.1f} | {r['docs_per_s']:.1f} | {r['chunks_per_s']:,.0f} | {attempt1} "
            f"| {r['max_attempt']} | {r['most_running_one_worker']} "
            f"| {' + '.join(f'{x:.1f}' for x in r['cpu_s'])} | {r['server_cpu_s']:.1f} "
            f"| {r['load_before'][0]:.2f}→{r['load_after'][0]:.2f} |"
        )
    notes = c.get("notes")  # a reader's analysis of this run, added to its JSON by hand (--render)
    return [*out, "", *([notes.strip(), ""] if notes else [])]


def clean_everywhere(c: dict[str, Any]) -> tuple[str, bool | None]:
    """The goal's figure: every run's docs/s and whether all its jobs succeeded at attempt 1."""
    runs = [r for r in c.get("runs", []) if not r.get("error")]
    if not runs:
        return "not measured", None
    shown = "; ".join(
        f"{'SQLite' if r['backend'] == 'sqlite' else 'PostgreSQL'} x{r['procs']}: "
        f"{r['at_attempt_1']:,} of {r['jobs']:,} at attempt 1, {r['docs_per_s']:.0f} docs/s"
        for r in runs
    )
    if len(runs) < len(c["runs"]) or not all(r["all_at_attempt_1"] for r in runs):
        return shown, False
    missing = {"sqlite", "postgresql"} - {r["backend"] for r in runs}
    if missing:  # a run limited to one backend (--only): the goal is not judged
        return f"{shown}; {', '.join(sorted(missing))} not measured", None
    return shown, True


def _profile(docs: int, log: Log) -> None:
    """cProfile of `ingestq ingest --wait`'s process (its in-process worker) on SQLite."""
    workdir = Path(tempfile.mkdtemp(prefix="ingestq-ceiling-prof-"))
    try:
        corpus = write_markdown(workdir / "docs", docs)
        pre = write_markdown(workdir / "pre", PRE_DOCS // 4, PRE_SECTIONS, start=10_000_000)
        url = f"sqlite:///{workdir / 'prof.db'}"
        with embed_server() as (embed_url, _):
            env = ingest_env(url, embed_url)
            run_ingest(pre, env, workdir / "prof.log", 1800)
            stats = workdir / "ingest.prof"
            argv = [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "ingestq.cli.main"]
            with (workdir / "prof.log").open("ab") as out:
                started = time.perf_counter()
                subprocess.run(
                    [*argv, "ingest", str(corpus), "--wait"],
                    env=env,
                    stdout=out,
                    stderr=out,
                    check=True,
                    timeout=3600,
                )
                log(f"profiled ingest of {docs} docs: {time.perf_counter() - started:.1f} s (under cProfile)")
        import pstats

        for key in ("tottime", "cumulative"):
            pstats.Stats(str(stats)).sort_stats(key).print_stats(30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fast_embed", description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=DOCS, help=f"small Markdown files ingested (default {DOCS:,})")
    p.add_argument("--procs", default="1,2", help="worker process counts (default 1,2)")
    p.add_argument("--only", choices=("sqlite", "postgresql"), help="one backend only")
    p.add_argument("--out", type=Path, help="also write the BENCHMARKS.md section and the JSON here")
    p.add_argument("--profile", type=int, metavar="DOCS", help="only profile ingest of DOCS files (SQLite)")
    p.add_argument("--render", type=Path, metavar="JSON", help="only print the section of an earlier --out")
    args = p.parse_args(argv)
    if args.render:
        print("\n".join(section(json.loads(args.render.read_text()))))
        return 0

    def log(msg: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)

    if args.profile:
        _profile(args.profile, log)
        return 0
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    load = " ".join(f"{x:.2f}" for x in loadavg())
    log(f"machine: {describe()}; load {load}")
    backends = (args.only,) if args.only else ("sqlite", "postgresql")
    procs = tuple(int(n) for n in args.procs.split(","))
    results = measure(args.docs, procs, backends, log)
    command = "python -m bench.fast_embed " + " ".join(argv if argv is not None else sys.argv[1:])
    results.update(command=command.strip(), started=f"{started}, load at start {load}")
    text = "\n".join(section(results))
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    runs = results["runs"]
    return 0 if runs and all(r.get("all_at_attempt_1") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
