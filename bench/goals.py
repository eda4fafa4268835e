"""The targets ingestq is held to, and how each is judged from the results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.harness import median_of


@dataclass
class Verdict:
    goal: str
    measured: str
    ok: bool | None  # None: not measured in this run


def _throughput(
    results: dict[str, Any], system: str, backend: str, procs: int, key: str = "jobs_per_s"
) -> float | None:
    runs = [
        r
        for r in results["throughput"]
        if r["system"] == system and r["backend"] == backend and r["procs"] == procs
    ]
    return median_of(runs, key)


def _pickup(results: dict[str, Any], system: str, backend: str) -> dict[str, Any] | None:
    for r in results["pickup"]:
        if r["system"] == system and r["backend"] == backend and not r.get("problem") and not r.get("error"):
            return r
    return None


def _bulk(results: dict[str, Any], system: str, backend: str) -> float | None:
    runs = [r for r in results["throughput"] if r["system"] == system and r["backend"] == backend]
    return median_of(runs, "bulk_jobs_per_s")


def _ratio_goal(results: dict[str, Any], backend: str, peer: str, factor: float, procs: int) -> Verdict:
    ours = _throughput(results, "ingestq", backend, procs)
    theirs = _throughput(results, peer, backend, procs)
    goal = (
        f"{backend}: ingestq ≥ {factor:g}× {peer} jobs/s, {procs} worker process{'es' if procs > 1 else ''}"
    )
    if ours is None or theirs is None:
        return Verdict(goal, "not measured", None)
    ratio = ours / theirs
    measured = f"{ours:,.0f} vs {theirs:,.0f} jobs/s = {ratio:.2f}×"
    ours_steady = _throughput(results, "ingestq", backend, procs, "steady_jobs_per_s")
    theirs_steady = _throughput(results, peer, backend, procs, "steady_jobs_per_s")
    if ours_steady and theirs_steady:
        measured += f" (steady, start-up excluded: {ours_steady / theirs_steady:.2f}×)"
    return Verdict(goal, measured, ratio >= factor)


def evaluate(results: dict[str, Any]) -> list[Verdict]:
    verdicts = [
        _ratio_goal(results, "postgresql", "pgqueuer", 1.5, 1),
        _ratio_goal(results, "postgresql", "pgqueuer", 1.5, 2),
        _ratio_goal(results, "sqlite", "huey", 5.0, 1),
        _ratio_goal(results, "sqlite", "huey", 5.0, 2),
    ]
    sq = _pickup(results, "ingestq", "sqlite")
    verdicts.append(
        Verdict("sqlite: pickup p99 ≤ 25 ms", f"{sq['p99_ms']:.1f} ms", sq["p99_ms"] <= 25)
        if sq
        else Verdict("sqlite: pickup p99 ≤ 25 ms", "not measured", None)
    )
    pg = _pickup(results, "ingestq", "postgresql")
    peers = [p for p in (_pickup(results, n, "postgresql") for n in ("pgqueuer", "procrastinate")) if p]
    goal = "postgresql: pickup p99 ≤ best PostgreSQL peer"
    if pg and peers:
        best = min(peers, key=lambda p: p["p99_ms"])
        verdicts.append(
            Verdict(
                goal,
                f"{pg['p99_ms']:.1f} ms vs {best['system']} {best['p99_ms']:.1f} ms",
                pg["p99_ms"] <= best["p99_ms"],
            )
        )
    else:
        verdicts.append(Verdict(goal, "not measured", None))
    for backend in ("sqlite", "postgresql"):
        p = _pickup(results, "ingestq", backend)
        goal = f"{backend}: idle worker < 2% of a core"
        verdicts.append(
            Verdict(goal, f"{p['idle_cpu_pct']:.3f}%", p["idle_cpu_pct"] < 2)
            if p
            else Verdict(goal, "not measured", None)
        )
    for backend in ("sqlite", "postgresql"):
        b = _bulk(results, "ingestq", backend)
        goal = f"{backend}: bulk enqueue ≥ 50,000 jobs/s"
        verdicts.append(
            Verdict(goal, f"{b:,.0f} jobs/s", b >= 50_000) if b else Verdict(goal, "not measured", None)
        )
    return verdicts
