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
    pickups: list[dict[str, Any]] = results["pickup"]  # results.json rows
    for r in pickups:
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
    """Every goal; the queue's only when a queue section ran, the embedding ones when `embed` ran, the
    fast embedder's when `ceiling` ran."""
    queue = any(results.get(k) for k in ("throughput", "pickup", "baselines", "flat"))
    embed = embed_verdicts(results) if results.get("embed") else []
    ceiling = [ceiling_verdict(results)] if results.get("ceiling") else []
    return (queue_verdicts(results) if queue else []) + embed + ceiling


CEILING_GOAL = "ceiling (fast embedder): every ingestion job succeeds at attempt 1, both backends"


def ceiling_verdict(results: dict[str, Any]) -> Verdict:
    from bench.fast_embed import clean_everywhere

    measured, ok = clean_everywhere(results["ceiling"])
    return Verdict(CEILING_GOAL, measured, ok)


def queue_verdicts(results: dict[str, Any]) -> list[Verdict]:
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


def embed_figure(results: dict[str, Any], system: str, phase: str, key: str) -> float | None:
    """Median over the embed runs of one figure (`system` "raw" has no phases: pass phase "")."""
    runs = results.get("embed", {}).get("runs", [])
    found = [r.get(system, {}) for r in runs]
    found = [f.get(phase, {}) if phase else f for f in found]
    return median_of([f for f in found if not f.get("error")], key)


def _edit(results: dict[str, Any]) -> dict[str, Any] | None:
    runs = results.get("embed", {}).get("runs", [])
    edits = [r["edit"] for r in runs if r.get("edit", {}).get("ingestq_embedded") is not None]
    return edits[0] if edits else None


def embed_verdicts(results: dict[str, Any]) -> list[Verdict]:
    def fig(system: str, phase: str, key: str) -> float | None:
        return embed_figure(results, system, phase, key)

    ours = fig("ingestq", "cold", "chunks_per_s")
    raw = fig("raw", "", "chunks_per_s")
    peer = fig("llamaindex", "cold", "chunks_per_s")
    verdicts = []
    goal = "embed: ingestq end to end ≥ 0.9× the raw model's chunks/s"
    verdicts.append(
        Verdict(goal, f"{ours:,.1f} vs {raw:,.1f} chunks/s = {ours / raw:.2f}×", ours / raw >= 0.9)
        if ours and raw
        else Verdict(goal, "not measured", None)
    )
    goal = "embed: ingestq ≥ 1.2× LlamaIndex IngestionPipeline chunks/s (cold)"
    verdicts.append(
        Verdict(goal, f"{ours:,.1f} vs {peer:,.1f} chunks/s = {ours / peer:.2f}×", ours / peer >= 1.2)
        if ours and peer
        else Verdict(goal, "not measured", None)
    )
    over = fig("ingestq", "cold", "over_window")
    peer_over, peer_chunks = fig("llamaindex", "cold", "over_window"), fig("llamaindex", "cold", "chunks")
    goal = "embed: no ingestq chunk over the model's window"
    theirs = f" (LlamaIndex: {peer_over:,.0f} of {peer_chunks:,.0f})" if peer_over is not None else ""
    verdicts.append(
        Verdict(goal, f"{over:,.0f} over{theirs}", over == 0)
        if over is not None
        else Verdict(goal, "not measured", None)
    )
    cosines = [
        r["vectors"]["cosine_min"]
        for r in results.get("embed", {}).get("runs", [])
        if "cosine_min" in r.get("vectors", {})
    ]
    goal = "embed: same vectors as LlamaIndex for the same text (cosine ≥ 0.9999)"
    verdicts.append(
        Verdict(goal, f"min cosine {min(cosines):.7f}", min(cosines) >= 0.9999)
        if cosines
        else Verdict(goal, "not measured", None)
    )
    first, again = fig("ingestq", "cold", "wall_s"), fig("ingestq", "again", "wall_s")
    goal = "embed: re-ingest of the unchanged corpus ≥ 20× faster than the first ingest"
    verdicts.append(
        Verdict(goal, f"{again:,.1f} s vs {first:,.1f} s = {first / again:.1f}×", first / again >= 20)
        if first and again
        else Verdict(goal, "not measured", None)
    )
    edit = _edit(results)
    goal = "embed: editing one paragraph re-embeds only the changed chunks"
    if edit is None:
        verdicts.append(Verdict(goal, "not measured", None))
    else:
        verdicts.append(
            Verdict(
                goal,
                f"{edit['ingestq_embedded']} embedded, {edit['ingestq_reused']} reused of "
                f"{edit['chunks_after']} chunks; {edit['changed_chunks']} chunk texts changed "
                f"(LlamaIndex re-embedded {edit['llamaindex_embedded']})",
                edit["ingestq_embedded"] == edit["changed_chunks"],
            )
        )
    return verdicts
