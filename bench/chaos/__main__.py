"""`python -m bench.chaos SCENARIO [--backend sqlite|pg] [--jobs N] [--minutes M]`: the fault suite.

SCENARIO is one of the names in `bench.chaos.scenarios.SCENARIOS`, or `all` (what `make chaos` runs:
every scenario but `soak` on every backend it applies to, at moderate sizes; `soak --minutes 60` is the
long run). Each scenario prints one line of
figures and its checks; `--report` rewrites its row of the table in docs/reliability.md. The exit code
is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
import warnings

from bench.chaos.report import update_table
from bench.chaos.scenarios import IN_ALL, SCENARIOS, Env, Options, Result


def line(res: Result) -> str:
    fig = res.figures
    if fig is None:
        return f"{res.scenario} {res.backend}: no figures"
    ratio = (
        f"{res.ratio * 100:.0f}% of undisturbed ({res.baseline:.1f}/s)" if res.ratio is not None else "n/a"
    )
    return (
        f"{res.scenario} [{res.backend}] jobs={res.jobs} faults={res.faults!r} lost={fig.lost} "
        f"(missing={fig.missing} unfinished={fig.unfinished}) "
        f"finished_twice={fig.finished_twice} same_attempt_twice={fig.same_attempt_twice} "
        f"concurrent={fig.concurrent} uncounted_reruns={fig.uncounted_reruns} "
        f"attempts_burned={fig.attempts_burned} recovery={res.recovery!r} "
        f"throughput={fig.throughput:.1f}/s = {ratio}" + (f" notes={fig.notes}" if fig.notes else "")
    )


def parse(argv: list[str]) -> tuple[list[str], list[str], Options, bool, bool]:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=[*SCENARIOS, "all"])
    p.add_argument("--backend", choices=["sqlite", "pg", "both"], default=None, help="default: all it fits")
    p.add_argument("--jobs", type=int, default=None, help="default: the scenario's (see DEFAULT_JOBS)")
    p.add_argument("--seconds", type=float, default=0.2, help="each job sleeps this long (default 0.2)")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--lease", type=float, default=None, help="default: the scenario's")
    p.add_argument("--grace", type=float, default=10.0)
    p.add_argument("--every", default=None, help="fault interval range LOW-HIGH seconds, e.g. 2-4")
    p.add_argument("--down", type=float, default=30.0, help="pg-outage: seconds the server is stopped")
    p.add_argument("--minutes", type=float, default=None, help="run about M minutes (sets --jobs)")
    p.add_argument("--timeout", type=float, default=180.0, help="give up on the jobs after S seconds")
    p.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (logs, markers, databases)"
    )
    p.add_argument("--report", action="store_true", help="rewrite the rows in docs/reliability.md")
    a = p.parse_args(argv)
    every = None
    if a.every:
        low, _, high = a.every.partition("-")
        every = (float(low), float(high or low))
    opts = Options(
        jobs=a.jobs,
        seconds=a.seconds,
        workers=a.workers,
        concurrency=a.concurrency,
        lease=a.lease,
        grace=a.grace,
        every=every,
        down=a.down,
        minutes=a.minutes,
        timeout=a.timeout,
    )
    names = IN_ALL if a.scenario == "all" else [a.scenario]
    backends = ["sqlite", "pg"] if a.backend in (None, "both") else [a.backend]
    return names, backends, opts, a.report, a.keep


async def run(
    names: list[str], backends: list[str], opts: Options, report: bool, keep: bool, argv: list[str]
) -> int:
    failed = 0
    for backend in backends:
        todo = [n for n in names if backend in SCENARIOS[n][1]]
        if not todo:
            continue
        env = Env(backend, keep)
        try:
            for name in todo:
                print(f"== {name} [{backend}]", flush=True)
                opts.backend = backend
                res = await SCENARIOS[name][0](env, opts, name)
                print(line(res), flush=True)
                for check, ok in res.checks.items():
                    print(f"  {'ok  ' if ok else 'FAIL'} {check}", flush=True)
                failed += not res.ok
                if report:
                    command = "python -m bench.chaos " + shlex.join(
                        [name, "--backend", backend, *_without(argv, {"--backend"}, ["all", *SCENARIOS])]
                    )
                    update_table(res, command)
        finally:
            env.close()
    return 1 if failed else 0


def _without(argv: list[str], options: set[str], positional: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in options:
            skip = True
            continue
        if arg in positional or arg in ("--report", "--keep"):
            continue
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
    # the harness's own pool complains while the server is away on purpose: the workers' logs tell more
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    argv = sys.argv[1:] if argv is None else argv
    names, backends, opts, report, keep = parse(argv)
    return asyncio.run(run(names, backends, opts, report, keep, argv))


if __name__ == "__main__":
    sys.exit(main())
