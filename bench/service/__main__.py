"""`python -m bench.service`: the service benchmarks (see bench/service/__init__.py); `make bench` runs
it after `python -m bench.run`.

    python -m bench.service                   # every section, both backends (≈ 10 min)
    python -m bench.service --quick           # shorter windows, history up to 100k (≈ 5 min)
    python -m bench.service --only sqlite --sections uploads,flat
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness, machine, pgserver
from bench.harness import OUT, ROOT
from bench.service import flat_http, polls, report, uploads
from bench.service import sse as sse_section

SECTIONS = ("uploads", "polls", "flat", "sse")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short windows, history up to 100k finished jobs")
    p.add_argument("--only", choices=("sqlite", "postgresql"), help="one backend only")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {','.join(SECTIONS)}")
    p.add_argument("--rate", type=float, default=200.0, help="offered upload rate, per second (default 200)")
    p.add_argument(
        "--pg",
        choices=("auto", "system", "embedded"),
        default="embedded",
        help="PostgreSQL server (default embedded: uploads need pgvector); see bench/pgserver.py",
    )
    p.add_argument(
        "--render", help="write the section from an earlier bench/out/service-*.json, measure nothing"
    )
    p.add_argument(
        "--reuse",
        help="an earlier bench/out/service-*.json: the sections not measured now are taken from it, and "
        "the report says so (to measure one section again without the others)",
    )
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="report path (default BENCHMARKS.md)")
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def _measure(args: argparse.Namespace, backends: list[str], results: dict[str, Any], log: Any) -> None:
    quick = args.quick
    if "uploads" in args.sections:
        for backend in backends:
            results["uploads"][backend] = uploads.measure(backend, args.rate, 5 if quick else 15, 16, log)
    if "polls" in args.sections:
        results["polls"] = polls.measure(
            backends, 20 if quick else 30, 10 if quick else 20, 20, 10 if quick else 20, log
        )
    if "flat" in args.sections:
        sizes = flat_http.SIZES[:2] if quick else flat_http.SIZES
        for backend in backends:
            results["flat"][backend] = flat_http.measure(backend, sizes, 50, log)
    if "sse" in args.sections:
        for backend in backends:
            results["sse"][backend] = sse_section.measure(backend, 50 if quick else 200, 40, log)


def _reuse(results: dict[str, Any], earlier: dict[str, Any], measured: list[str]) -> None:
    taken = [name for name in SECTIONS if name not in measured and earlier.get(name)]
    for name in taken:
        results[name] = earlier[name]
    if taken:
        results.setdefault("postgresql", earlier.get("postgresql", "not measured"))
        results.setdefault("notes", []).append(
            f"{', '.join(measured)} measured by this command; {', '.join(taken)} from the run of "
            f"{earlier['started']}–{earlier['finished']} (`{earlier['command']}`, load average "
            f"{earlier['load_start']} at its start)"
        )


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:] or shlex.split(os.environ.get("SERVICE_BENCH_ARGS", ""))
    args = parse(argv)
    if args.render:
        report.write(args.out, report.render(json.loads(Path(args.render).read_text())))
        return 0
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    started = datetime.now(UTC)
    t0 = time.time()
    pg = None
    results: dict[str, Any] = {
        "command": ("python -m bench.service " + shlex.join(argv)).strip(),
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "machine": machine.describe(),
        "load_start": " ".join(f"{x:.2f}" for x in machine.loadavg()),
        "uploads": {},
        "polls": {},
        "flat": {},
        "sse": {},
    }
    if "postgresql" in backends:
        pg, note = pgserver.choose(args.pg)
        if pg is None:
            log(f"PostgreSQL not measured: {note}")
            backends.remove("postgresql")
        else:
            harness.use_pg(pg.url)
            results["postgresql"] = pg.description
    try:
        _measure(args, backends, results, log)
    finally:
        if pg is not None:
            pg.stop()
    if args.reuse:
        _reuse(results, json.loads(Path(args.reuse).read_text()), args.sections)
    results["finished"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    results["duration_s"] = time.time() - t0
    results["load_end"] = " ".join(f"{x:.2f}" for x in machine.loadavg())
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"service-{started:%Y%m%dT%H%M%S}.json"
    raw.write_text(json.dumps(results, indent=1))
    report.write(args.out, report.render(results))
    log(f"wrote the service section of {args.out} (raw results: {raw})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
