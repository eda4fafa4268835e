"""Turns the results of one `python -m bench.run` into BENCHMARKS.md (tables, ratios, goals, method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import embed_report, fast_embed
from bench.goals import evaluate

__all__ = ["evaluate", "render"]
from bench.harness import median_of

ANALYSIS = Path(__file__).with_name("analysis.md")


def _f(value: float | None, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def _load(runs: list[dict[str, Any]]) -> str:
    loads = [r[k][0] for r in runs for k in ("load_before", "load_after") if r.get(k)]
    return f"{min(loads):.2f}–{max(loads):.2f}" if loads else "—"


def _group(results: dict[str, Any], system: str, backend: str, procs: int) -> list[dict[str, Any]]:
    return [
        r
        for r in results["throughput"]
        if r["system"] == system and r["backend"] == backend and r["procs"] == procs
    ]


def _throughput_table(results: dict[str, Any], backend: str) -> list[str]:
    systems = [s for s in results["systems"] if s["backend"] == backend]
    lines = [
        "| system | procs | jobs/s (start-up incl.) | steady jobs/s | first job after launch "
        "| worker CPU ms / 1k jobs | runs ok | load avg (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for procs in (1, 2):
        for s in systems:
            runs = _group(results, s["name"], backend, procs)
            if not runs:
                continue
            ok = [r for r in runs if not r.get("problem") and not r.get("error")]
            problems = "; ".join(sorted({r.get("problem") or r.get("error", "") for r in runs} - {""}))
            lines.append(
                f"| {s['name']} | {procs} | {_f(median_of(runs, 'jobs_per_s'))} | "
                f"{_f(median_of(runs, 'steady_jobs_per_s'))} | {_f(median_of(runs, 'startup_s'), '.2f')} s | "
                f"{_f(median_of(runs, 'cpu_ms_per_1k'))} | "
                f"{len(ok)}/{len(runs)}{' (' + problems + ')' if problems else ''} | {_load(runs)} |"
            )
    lines.append("")
    peers = [s["name"] for s in systems if not s["name"].startswith("ingestq")]
    mine = [s["name"] for s in systems if s["name"].startswith("ingestq")]
    for procs in (1, 2):
        best = max(
            ((median_of(_group(results, p, backend, procs), "jobs_per_s") or 0.0, p) for p in peers),
            default=(0.0, ""),
        )
        for name in mine:
            ours = median_of(_group(results, name, backend, procs), "jobs_per_s")
            if ours and best[0]:
                lines.append(
                    f"- {procs} process{'es' if procs > 1 else ''}: {name} / best peer ({best[1]}) = "
                    f"**{ours / best[0]:.2f}×**"
                )
    return lines


def _pickup_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| system | backend | p50 ms | p99 ms | max ms | of which the enqueue call, p50 / p99 ms "
        "| idle worker CPU (% of a core) | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["pickup"]:
        if r.get("error"):
            lines.append(f"| {r['system']} | {r['backend']} | error: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['system']} | {r['backend']} | {_f(r['p50_ms'], '.1f')} | {_f(r['p99_ms'], '.1f')} | "
            f"{_f(r['max_ms'], '.1f')} | "
            f"{_f(r.get('enqueue_p50_ms'), '.1f')} / {_f(r.get('enqueue_p99_ms'), '.1f')} | "
            f"{_f(r['idle_cpu_pct'], '.2f')} | {_load([r])} |"
        )
    return lines


def _bulk_table(results: dict[str, Any]) -> list[str]:
    lines = ["| system | backend | API | jobs/s |", "|---|---|---|---:|"]
    api = {
        "pgqueuer": "`Queries.enqueue` with lists",
        "procrastinate": "`batch_defer_async`",
        "huey": "one `task()` call per job (no bulk API)",
        "ingestq": "`Client.enqueue_many(..., return_jobs=False)` (→ `Store.job_insert_bulk`)",
        "ingestq FULL": "`Client.enqueue_many`, synchronous=FULL",
        "ingestq c10": "`Client.enqueue_many`",
    }
    for s in results["systems"]:
        runs = [r for r in results["throughput"] if r["system"] == s["name"] and r["backend"] == s["backend"]]
        if runs:
            lines.append(
                f"| {s['name']} | {s['backend']} | {api.get(s['name'], '')} "
                f"| {_f(median_of(runs, 'bulk_jobs_per_s'))} |"
            )
    return lines


def _flat_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | call | median ms, 0 finished | median ms, N finished | p99 ms, 0 | p99 ms, N |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend, r in results["flat"].items():
        if "error" in r:
            lines.append(f"| {backend} | error: {r['error']} | | | | |")
            continue
        for call in ("claim", "job_get", "position", "stats"):
            b, a = r["before"][call], r["after"][call]
            lines.append(
                f"| {backend} | {call} | {b['median_ms']:.3f} | {a['median_ms']:.3f} | "
                f"{b['p99_ms']:.3f} | {a['p99_ms']:.3f} |"
            )
    notes = [
        f"- {backend}: N = {r['rows']:,} finished jobs added in {r['fill_seconds']:.0f} s; stats counted "
        f"{r['finished_counted']:,} finished."
        for backend, r in results["flat"].items()
        if "error" not in r
    ]
    return [*lines, "", *notes]


def _baselines(results: dict[str, Any]) -> list[str]:
    b = results["baselines"]
    out = []
    if "pg_insert" in b:
        out.append(
            "- PostgreSQL, one connection, single-row INSERT, autocommit: "
            f"**{_f(b['pg_insert'].get('commits_per_s'))} commits/s** {b['pg_insert'].get('error', '')}"
        )
    for sync in ("NORMAL", "FULL"):
        key = f"sqlite_{sync}"
        if key in b:
            out.append(
                f"- SQLite WAL synchronous={sync}, one connection, claim-commit + done-commit per job: "
                f"**{_f(b[key].get('jobs_per_s'))} jobs/s** ({_f(b[key].get('commits_per_s'))} commits/s)"
            )
    return out


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    verdicts = evaluate(results)
    loads = [
        x[0]
        for r in results["throughput"] + results["pickup"]
        for x in (r.get("load_before"), r.get("load_after"))
        if x
    ] + embed_report.loads(results)
    load_range = f"{min(loads):.2f}–{max(loads):.2f}" if loads else "—"
    queue = any(results.get(k) for k in ("throughput", "pickup", "baselines", "flat"))
    out = [
        "# Benchmarks",
        "",
        "ingestq's queue and ingestion measured side by side with peers on one machine, in one run.",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand — the analysis section comes",
        "from `bench/analysis.md`.",
        "",
        f"- Command: `{results['command']}`; code at commit {results.get('commit', 'unknown')}",
        f"- Date: {results['started']} → {results['finished']} ({results['duration_s'] / 60:.1f} min)",
        f"- Machine: {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}",
        f"- PostgreSQL: {results['postgresql']}"
        + (f" — {results['pg_note']}" if results.get("pg_note") else ""),
        f"- Peers: {', '.join(f'{k} {v}' for k, v in results['versions'].items())}",
        f"- Load average (1 min) before/after each measurement: {load_range}; "
        f"at start {results['load_start']}, at end {results['load_end']}. "
        "**The machine is shared with other engineers' test runs and is noisy**: figures can move by 2× "
        "between runs; ratios from one interleaved run are more reliable than absolutes.",
        *(
            [f"- Jobs per throughput run: {results['jobs']:,}; runs per figure: {results['runs']}."]
            if queue
            else []
        ),
        "",
        "## Goals",
        "",
        *(THROUGHPUT_NOTE if queue else []),
        "| goal | measured | verdict |",
        "|---|---|---|",
        *(
            f"| {v.goal} | {v.measured} | {'PASS' if v.ok else ('MISS' if v.ok is False else 'n/a')} |"
            for v in verdicts
        ),
        "",
    ]
    if any(r["backend"] == "postgresql" for r in results["throughput"]):
        out += ["## PostgreSQL throughput", "", *_throughput_table(results, "postgresql"), ""]
    if any(r["backend"] == "sqlite" for r in results["throughput"]):
        out += ["## SQLite throughput", "", *_throughput_table(results, "sqlite"), ""]
    if results["pickup"]:
        out += ["## Pickup latency and idle CPU", "", *_pickup_table(results), ""]
    if results["throughput"]:
        out += [
            "## Bulk enqueue",
            "",
            f"{results['jobs']:,} jobs in calls of 1,000, fresh database each run.",
            "",
            *_bulk_table(results),
            "",
        ]
    if results["baselines"]:
        out += ["## Baselines (no queue code)", "", *_baselines(results), ""]
    if results["flat"]:
        out += [
            "## Cost with a large finished history (guarantee 10)",
            "",
            "Store calls timed through the `Store` API with 0 finished jobs, then again after N finished",
            "jobs were added (bulk SQL in `bench/flat.py`, then `VACUUM ANALYZE` on PostgreSQL as",
            "autovacuum would).",
            "",
            *_flat_table(results),
            "",
        ]
    if results.get("embed"):
        out += embed_report.section(results)
    if results.get("ceiling"):
        out += fast_embed.section(results["ceiling"])
    if queue:
        out += [METHOD.format(**{"pickup_runs": 1, **results}), ""]  # results from before pooled pickups
        if ANALYSIS.exists():
            out += [ANALYSIS.read_text().strip(), ""]
    return "\n".join(out)


THROUGHPUT_NOTE = [
    "Throughput goals are judged on jobs/s with worker start-up included (the clock starts when the",
    "worker processes are launched); the steady ratio is shown alongside.",
    "",
]

METHOD = """## Method

One workload for every system: a no-op job that appends one line `<id> <enqueue ts> <start ts> <pid>` to a
shared file opened with O_APPEND (`bench/drivers/workload.py`). Each throughput run uses a fresh database
(PostgreSQL: a new database on the server above; SQLite: a new file), enqueues all jobs first (that step is
the bulk-enqueue figure), then starts the clock and launches the worker processes. The clock stops when the
N-th job has run (its line is in the file), the same point for every system; workers with a drain mode
(pgqueuer drain mode, `procrastinate worker --one-shot`, `ingestq worker --once`) then finish recording
outcomes and exit by themselves (that time is kept in the raw results as `exit_seconds`, and every run
must still exit cleanly), huey has none and is stopped with SIGINT. Every system runs from compiled
bytecode, as pip installs a package (ingestq's is compiled first: see `bench/ours.py`, the machine sets
PYTHONDONTWRITEBYTECODE and ingestq is installed editable). Start-up is included in
"jobs/s"; "steady" is (N-1) / (last start − first start). "Worker CPU" is the user+system time of the
worker processes, start-up included (from wait4, or /proc for huey's consumer tree), per 1,000 jobs: less
sensitive to a busy machine than wall time; it excludes the database server's own CPU. After each run the
file must hold each id exactly once (none lost, none run twice); a run that fails this is reported and
left out of the median.

PostgreSQL systems all run against one server, {postgresql}, a fresh database per run, in the same run
and interleaved (run 1 of every system, then run 2, ...) so that background noise spreads over all of
them. {pg_note}

Pickup latency: one idle worker (after a warm-up job and 2 s of settling), then 200 jobs enqueued 20 ms
apart, one enqueue call each; latency = job start − wall time just before the enqueue call. Each system
is measured {pickup_runs} times, interleaved with the others, and its percentiles are taken over all
those jobs together (a p99 of one run of 200 jobs is its second-slowest job); the enqueue-call times and
idle CPU are the median of the runs. Idle CPU: the worker's process tree, user+system time from
/proc/<pid>/stat over {idle_seconds:g} s of idling before those jobs.

Systems:
{system_notes}
"""
