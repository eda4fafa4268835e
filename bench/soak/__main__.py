"""`python -m bench.soak [--backend sqlite|pg] [--minutes M] [--report]`: the soak (see __init__.py).

Prints a progress line every minute, then one line of figures and the checks; `--report` rewrites the
backend's block of the "Soak" section in docs/reliability.md. The exit code is 1 when a check failed."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import logging
import shlex
import sys
import warnings

from bench.machine import describe, loadavg
from bench.soak.analyse import Figures, analyse, every, windows
from bench.soak.report import update
from bench.soak.run import Options, Outcome, soak

HEADER = (
    "| minute | RSS API MB | RSS workers MB (+parsers) | database MB | job rows | document rows "
    "| embed-cache rows | backlog | p99 pickup s (5 min) | load avg |"
)


def parse(argv: list[str]) -> tuple[Options, float, float, bool]:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--embedder", choices=["local", "fake"], default="local")
    p.add_argument("--job-rate", type=float, default=5.0, help="probe jobs per second (default 5)")
    p.add_argument("--doc-rate", type=float, default=0.5, help="documents per second (default 0.5)")
    p.add_argument("--retention", type=float, default=60.0, help="seconds succeeded jobs are kept")
    p.add_argument(
        "--cache-retention", type=float, default=600.0, help="seconds embedding-cache entries are kept"
    )
    p.add_argument("--max-slope", type=float, default=20.0, help="memory check: MB/hour (default 20)")
    p.add_argument("--max-growth", type=float, default=0.1, help="database check: late/early peak - 1")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, database)")
    p.add_argument(
        "--report", action="store_true", help="rewrite this backend's block in docs/reliability.md"
    )
    a = p.parse_args(argv)
    opts = Options(
        backend=a.backend,
        minutes=a.minutes,
        workers=a.workers,
        embedder=a.embedder,
        job_rate=a.job_rate,
        doc_rate=a.doc_rate,
        retention=a.retention,
        cache_retention=a.cache_retention,
        keep=a.keep,
    )
    return opts, a.max_slope, a.max_growth, a.report


def line(opts: Options, out: Outcome, fig: Figures) -> str:
    t = out.load.tally
    slopes = ", ".join(f"{n} {v:+.1f}" if v is not None else f"{n} n/a" for n, v in fig.slopes.items())
    _, window = windows(out.duration)
    first = f"{fig.p99_first:.3f}" if fig.p99_first is not None else "n/a"
    last = f"{fig.p99_last:.3f}" if fig.p99_last is not None else "n/a"
    ratio = f"{fig.p99_last / fig.p99_first:.2f}" if fig.p99_first and fig.p99_last is not None else "n/a"
    db = f"WAL max {fig.wal_max:.1f} MB" if opts.backend == "sqlite" else "tables with indexes"
    return (
        f"soak [{opts.backend}] {fig.minutes:.0f} min, {opts.embedder} embedder: "
        f"{t.enqueued['probe']} jobs + {t.enqueued['ingest']} documents sent, "
        f"{t.succeeded['probe']} + {t.succeeded['ingest']} succeeded, {t.indexed} indexed, "
        f"{t.deleted} deleted (workers report {t.workers_succeeded} succeeded); "
        f"lost {len(fig.lost) + len(t.problems)}; "
        f"RSS slope MB/h ({slopes}); database {fig.db_early:.1f} → {fig.db_late:.1f} MB "
        f"(peaks early/late, slope {fig.db_slope or 0:+.1f} MB/h, {db}); "
        f"p99 pickup first {window / 60:.3g} min {first} s, last {window / 60:.3g} min {last} s "
        f"(×{ratio}; by kind "
        + ", ".join(f"{k} {_s(a)} → {_s(b)} s" for k, (a, b) in fig.by_kind.items())
        + f"); p99 POST answer first {_s(fig.answer_p99_first)} s, last {_s(fig.answer_p99_last)} s; "
        f"sends held back {t.late_ticks}"
    )


def _s(v: float | None) -> str:
    return f"{v:.3f}" if v is not None else "n/a"


def checks(fig: Figures) -> list[str]:
    marks = {True: "ok  ", False: "FAIL", None: "n/a "}
    return [f"  {marks[ok]} {name}" for name, ok in fig.checks.items()]


def body(opts: Options, out: Outcome, fig: Figures, command: str) -> str:
    m = describe()
    lines = [
        f"**{opts.backend}**: {line(opts, out, fig)}.",
        "",
        "Checks: "
        + "; ".join(
            f"{name}: {'pass' if ok else 'FAIL' if ok is False else 'n/a'}" for name, ok in fig.checks.items()
        )
        + ".",
        "",
        f"`{command}` ({dt.date.today().isoformat()}; {m['cores']} cores {m['cpu']}, "
        f"{m['memory_gb']} GB, shared: load average {loadavg()[1]:.1f} over the last 5 minutes at the end).",
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
        *("| " + " | ".join(row) + " |" for row in every(out.samples, out.load.pickups, opts.backend)),
    ]
    problems = out.lost + out.load.tally.problems
    if problems:
        lines += ["", f"Problems ({len(problems)}, first 10):", *(f"- {p}" for p in problems[:10])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    argv = sys.argv[1:] if argv is None else argv
    opts, max_slope, max_growth, report = parse(argv)
    print(f"== soak [{opts.backend}] {opts.minutes:g} min", flush=True)
    out = asyncio.run(soak(opts))
    fig = analyse(
        out.samples,
        out.load.pickups,
        out.load.tally,
        out.lost,
        out.duration,
        max_slope=max_slope,
        max_growth=max_growth,
        exits=out.exits,
    )
    print(line(opts, out, fig), flush=True)
    print("\n".join(checks(fig)), f"  exit codes: {out.exits}", sep="\n", flush=True)
    for problem in (out.lost + out.load.tally.problems)[:20]:
        print(f"  problem: {problem}", flush=True)
    if out.root.exists():  # --keep: the raw figures beside the logs
        raw = {
            "samples": [dataclasses.asdict(x) for x in out.samples],
            "pickups": [dataclasses.asdict(x) for x in out.load.pickups],
            "answers": out.load.tally.answers,
        }
        (out.root / "soak.json").write_text(json.dumps(raw))
    if report:
        command = "python -m bench.soak " + shlex.join([a for a in argv if a not in ("--report", "--keep")])
        update(opts.backend, body(opts, out, fig, command))
    return 0 if fig.ok else 1


if __name__ == "__main__":
    sys.exit(main())
