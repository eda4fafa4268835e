"""`make bench`: measure ingestq and its peers on one workload and write BENCHMARKS.md.

    python -m bench.run                  # full: 10,000 jobs, 3 runs, 1M finished rows (≈ 10–15 min), then
                                         # the embed section on all 992 Markdown files (≈ 40+ min)
    python -m bench.run --quick          # 2,000 jobs, 1 run, 100k finished rows, embed on 100 files
    python -m bench.run --only sqlite    # one backend (sqlite | postgresql)
    python -m bench.run --skip flat,baselines --out /tmp/B.md
    python -m bench.run --only-section embed --out /tmp/E.md    # the ingestion benchmark alone (≈ 40 min)
    python -m bench.run --only-section embed --quick --out /tmp/E.md   # on 100 of the 992 files
    python -m bench.run --only-section embed --add-to bench/out/results-*.json   # into an earlier report
    python -m bench.run --only-section ceiling    # a fast embedder: ingestion's ceiling (bench/fast_embed.py)
    BENCH_ARGS="--quick" make bench      # the same options through make

Peers are installed on first use in .bench-venv (never in ingestq's own venv). PostgreSQL: see --pg and
bench/pgserver.py; each run creates and drops a database of its own on one shared server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import baselines, embed_bench, fast_embed, flat, harness, machine, ours, peers, pgserver, report
from bench.harness import OUT, ROOT, System
from bench.pgserver import PgChoice
from bench.service import report as service_report

QUEUE_SECTIONS = ("throughput", "pickup", "baselines", "flat")
SECTIONS = (*QUEUE_SECTIONS, "embed", "ceiling")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small and fast: 2,000 jobs, 1 run, 100k finished rows"
    )
    p.add_argument("--only", choices=("sqlite", "postgresql"), help="one backend only")
    p.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    p.add_argument("--only-section", default="", help="comma-separated sections to run, the others skipped")
    p.add_argument(
        "--embed-files",
        type=int,
        help=f"embed section: Markdown files ingested (default all 992; --quick {embed_bench.QUICK_FILES})",
    )
    p.add_argument(
        "--ceiling-docs",
        type=int,
        help=f"ceiling section: small Markdown files per run (default {fast_embed.DOCS:,}; --quick 1,000)",
    )
    p.add_argument("--embed-runs", type=int, default=1, help="embed section: runs, median shown (default 1)")
    p.add_argument("--jobs", type=int, help="jobs per throughput run (default 10,000; --quick 2,000)")
    p.add_argument("--runs", type=int, help="runs per throughput figure, median shown (default 3; --quick 1)")
    p.add_argument("--flat-rows", type=int, help="finished rows for the flat-cost check (default 1,000,000)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle-CPU sampling window (default 10)")
    p.add_argument("--pickup-runs", type=int, help="pickup runs per system, pooled (default 3; --quick 1)")
    p.add_argument("--no-peers", action="store_true", help="measure ingestq only")
    p.add_argument("--systems", default="", help="comma-separated system names to measure (default: all)")
    p.add_argument("--all-runs", action="store_true", help="give slow peers (procrastinate) every run too")
    p.add_argument(
        "--add-to",
        type=Path,
        help="merge into an earlier results JSON (bench/out/results-*.json): what this run measures replaces "
        "the same systems' entries there; the report names both runs",
    )
    p.add_argument(
        "--pg",
        choices=("auto", "system", "embedded"),
        default="auto",
        help="PostgreSQL server: the machine's (BENCH_PG_URL), an embedded one, or auto (default: the "
        "machine's if it has pgvector)",
    )
    p.add_argument(
        "--out", type=Path, default=ROOT / "BENCHMARKS.md", help="report path (default BENCHMARKS.md)"
    )
    args = p.parse_args(argv)
    args.jobs = args.jobs or (2_000 if args.quick else 10_000)
    args.runs = args.runs or (1 if args.quick else 3)
    args.pickup_runs = args.pickup_runs or (1 if args.quick else 3)
    args.flat_rows = args.flat_rows or (100_000 if args.quick else 1_000_000)
    args.embed_files = args.embed_files or (embed_bench.QUICK_FILES if args.quick else None)
    args.ceiling_docs = args.ceiling_docs or (1_000 if args.quick else fast_embed.DOCS)
    args.skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only_section.split(",") if s}
    for flag, names in (("--skip", args.skip), ("--only-section", only)):
        unknown = names - set(SECTIONS)
        if unknown:
            p.error(f"{flag}: unknown section(s) {', '.join(sorted(unknown))}; choose: {', '.join(SECTIONS)}")
    if only:
        args.skip |= set(SECTIONS) - only
    return args


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def _short(r: dict[str, Any]) -> str:
    keys = (
        "jobs_per_s",
        "steady_jobs_per_s",
        "cpu_ms_per_1k",
        "bulk_jobs_per_s",
        "p50_ms",
        "p99_ms",
        "idle_cpu_pct",
    )
    parts = [f"{k}={r[k]:,.1f}" for k in keys if isinstance(r.get(k), float)]
    if r.get("problem") or r.get("error"):
        parts.append(f"PROBLEM: {r.get('problem') or r.get('error')}")
    return " ".join(parts) + f" load={r.get('load_before', ('?',))[0]}"


def _guard(system: System, fn: Any, *a: Any, **kw: Any) -> dict[str, Any]:
    try:
        r: dict[str, Any] = fn(system, *a, **kw)
    except Exception as exc:  # one broken system must not cost the whole run
        (OUT / "errors.log").open("a").write(
            f"--- {system.name}/{system.backend}\n{traceback.format_exc()}\n"
        )
        r = {
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            "load_before": machine.loadavg(),
            "load_after": machine.loadavg(),
        }
    r.update(system=system.name, backend=system.backend)
    return r


def run_throughput(systems: list[System], args: argparse.Namespace, results: dict[str, Any]) -> None:
    # Interleaved: run k of every system before run k+1 of any, so background noise spreads evenly.
    for run in range(args.runs):
        for procs in (1, 2):
            for s in systems:
                if s.name == "ingestq FULL" and procs == 2:
                    continue
                if s.max_runs is not None and run >= s.max_runs and not args.all_runs:
                    continue
                r = _guard(s, harness.throughput, args.jobs, procs)
                r.update(run=run, procs=procs)
                results["throughput"].append(r)
                log(f"throughput run {run + 1}/{args.runs} {s.name}/{s.backend} x{procs}: {_short(r)}")


def run_pickup(systems: list[System], args: argparse.Namespace, results: dict[str, Any]) -> None:
    """`args.pickup_runs` runs per system, interleaved like the throughput runs; the figure pools them."""
    measured = [s for s in systems if s.name not in ours.VARIANTS]
    runs: dict[str, list[dict[str, Any]]] = {f"{s.name}/{s.backend}": [] for s in measured}
    for run in range(args.pickup_runs):
        for s in measured:
            r = _guard(s, harness.pickup, idle_seconds=args.idle_seconds)
            r.update(run=run)
            runs[f"{s.name}/{s.backend}"].append(r)
            log(f"pickup run {run + 1}/{args.pickup_runs} {s.name}/{s.backend}: {_short(r)}")
    for name, rs in runs.items():
        pooled = harness.pooled_pickup(rs)
        results["pickup"].append(pooled)
        log(f"pickup {name}, {pooled.get('runs', 0)} runs pooled: {_short(pooled)}")


def _fresh_pg_db() -> str:
    name = f"bench_{int(time.time() * 1000)}"
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def _drop_pg_db(name: str) -> None:
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_baselines(args: argparse.Namespace, results: dict[str, Any]) -> None:
    b = results["baselines"]
    if args.only != "sqlite":
        db = _fresh_pg_db()
        try:
            b["pg_insert"] = baselines.pg_insert_commits(harness.pg_url(db))
        except Exception as exc:
            b["pg_insert"] = {"error": str(exc).splitlines()[0]}
        finally:
            _drop_pg_db(db)
    if args.only != "postgresql":
        OUT.mkdir(parents=True, exist_ok=True)
        b["sqlite_NORMAL"] = baselines.sqlite_claim_commit(OUT / "baseline.db", "NORMAL")
        b["sqlite_FULL"] = baselines.sqlite_claim_commit(OUT / "baseline.db", "FULL", n=1_000)
    log(f"baselines: {json.dumps(b)}")


def run_flat(args: argparse.Namespace, results: dict[str, Any]) -> None:
    if args.only != "postgresql":
        path = OUT / "flat.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            results["flat"]["sqlite"] = asyncio.run(flat.flat(f"sqlite:///{path}", args.flat_rows, str(path)))
        except Exception as exc:
            results["flat"]["sqlite"] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        log(f"flat sqlite: {json.dumps(results['flat']['sqlite'])[:300]}")
    if args.only != "sqlite":
        db = _fresh_pg_db()
        try:
            results["flat"]["postgresql"] = asyncio.run(flat.flat(harness.pg_url(db), args.flat_rows, None))
        except Exception as exc:
            results["flat"]["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            _drop_pg_db(db)
        log(f"flat postgresql: {json.dumps(results['flat']['postgresql'])[:300]}")


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        # `BENCH_ARGS="--quick --only sqlite" make bench`: make passes no arguments through itself.
        argv = sys.argv[1:] or shlex.split(os.environ.get("BENCH_ARGS", ""))
    args = parse(argv)
    t0 = time.time()
    started = datetime.now(UTC)
    systems: list[System] = []
    versions: dict[str, str] = {}
    queue = bool(set(QUEUE_SECTIONS) - args.skip)
    if not args.no_peers or "embed" not in args.skip:
        log("peers: ensuring .bench-venv (first time: a few minutes of pip)")
        peers.ensure_venv()
        versions = peers.versions()
    if not args.no_peers and queue:
        systems += peers.systems()
    if queue:
        systems += ours.systems()
        ours.compile_bytecode()
    pg: PgChoice | None = None
    pg_note = ""
    if queue and args.only != "sqlite":
        pg, pg_note = pgserver.choose(args.pg)
        if pg_note:
            log(pg_note)
        if pg is None:
            if args.only == "postgresql":
                print(f"error: {pg_note}", file=sys.stderr)
                return 1
            log("measuring SQLite only")
            args.only = "sqlite"
        else:
            harness.use_pg(pg.url)
    try:
        return _measure(args, argv, systems, versions, pg, pg_note, started, t0)
    finally:
        if pg is not None:
            pg.stop()


def _measure(
    args: argparse.Namespace,
    argv: list[str],
    systems: list[System],
    versions: dict[str, str],
    pg: PgChoice | None,
    pg_note: str,
    started: datetime,
    t0: float,
) -> int:
    if args.only:
        systems = [s for s in systems if s.backend == args.only]
    if args.systems:
        wanted = {name.strip() for name in args.systems.split(",")}
        systems = [s for s in systems if s.name in wanted]
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": ("python -m bench.run " + shlex.join(argv)).strip(),
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "machine": machine.describe(),
        "postgresql": pg.description if pg else "not measured",
        "pg_note": pg_note,
        "versions": versions,
        "load_start": " ".join(f"{x:.2f}" for x in machine.loadavg()),
        "jobs": args.jobs,
        "runs": args.runs,
        "idle_seconds": args.idle_seconds,
        "pickup_runs": args.pickup_runs,
        "systems": [{"name": s.name, "backend": s.backend, "note": s.note} for s in systems],
        "system_notes": "\n".join(f"- {s.name} ({s.backend}): {s.note}" for s in systems),
        "throughput": [],
        "pickup": [],
        "baselines": {},
        "flat": {},
        "embed": {},
        "ceiling": {},
    }
    log(f"machine: {results['machine']}; load {results['load_start']}")
    if "throughput" not in args.skip:
        run_throughput(systems, args, results)
    if "pickup" not in args.skip:
        run_pickup(systems, args, results)
    if "baselines" not in args.skip:
        run_baselines(args, results)
    if "flat" not in args.skip:
        run_flat(args, results)
    if "embed" not in args.skip:
        results["embed"] = embed_bench.measure(args.embed_files, args.embed_runs, log)
        results["embed"]["command"] = results["command"]
    if "ceiling" not in args.skip:
        backends = (args.only,) if args.only else ("sqlite", "postgresql")
        load = " ".join(f"{x:.2f}" for x in machine.loadavg())
        begun = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load at start {load}"
        results["ceiling"] = fast_embed.measure(args.ceiling_docs, (1, 2), backends, log)
        results["ceiling"].update(command=results["command"], started=begun)
    results["finished"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    results["duration_s"] = time.time() - t0
    results["load_end"] = " ".join(f"{x:.2f}" for x in machine.loadavg())
    results["commit"] = _commit()
    if args.add_to:
        results = _merge(json.loads(args.add_to.read_text()), results)
    raw = OUT / f"results-{started:%Y%m%dT%H%M%S}.json"
    raw.write_text(json.dumps(results, indent=1))
    old = args.out.read_text() if args.out.exists() else ""
    # the service section (python -m bench.service) is kept as it was: this run did not measure it
    args.out.write_text(service_report.keep(old, report.render(results)))
    log(f"wrote {args.out} (raw results: {raw})")
    for v in report.evaluate(results):
        log(f"{'PASS' if v.ok else ('MISS' if v.ok is False else 'n/a '):4}  {v.goal}: {v.measured}")
    return 0


def _commit() -> str:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" (src/ has uncommitted changes)" if dirty.stdout.strip() else "")


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`old` with, per section, every entry of the systems `new` measured in that section replaced by
    `new`'s (a run limited to some sections leaves the others' entries as they were)."""
    merged = dict(old)
    for key in ("throughput", "pickup"):
        mine = {(r["system"], r["backend"]) for r in new[key]}
        merged[key] = [r for r in old[key] if (r["system"], r["backend"]) not in mine] + new[key]
    merged["baselines"] = {**old["baselines"], **new["baselines"]}
    merged["flat"] = {**old["flat"], **new["flat"]}
    merged["embed"] = new.get("embed") or old.get("embed") or {}
    merged["ceiling"] = new.get("ceiling") or old.get("ceiling") or {}
    if new["pickup"]:
        merged["pickup_runs"] = new.get("pickup_runs", 1)
    known = {(s["name"], s["backend"]) for s in old["systems"]}
    merged["systems"] = old["systems"] + [s for s in new["systems"] if (s["name"], s["backend"]) not in known]
    merged["system_notes"] = "\n".join(
        f"- {s['name']} ({s['backend']}): {s['note']}" for s in merged["systems"]
    )
    merged["command"] = (
        f"{old['command']}` ({old['started']}, commit {old.get('commit', '?')}), then `{new['command']}"
    )
    merged["commit"] = f"{old.get('commit', '?')}, then {new['commit']} for what the second command measured"
    merged["finished"] = new["finished"]
    merged["duration_s"] = old["duration_s"] + new["duration_s"]
    merged["load_end"] = new["load_end"]
    return merged


if __name__ == "__main__":
    sys.exit(main())
