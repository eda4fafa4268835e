"""A document's stage timeline: where its newest ingestion run spent its time (waiting in the queue,
then fetch, detect, parse, chunk, embed, and the commit), from the job's timestamps and the
`stage_seconds` the ingestion attempt reports in its result. Drawn as one SVG bar of segments whose
widths are attributes (the CSP forbids inline style) plus a table with the figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingestq.model.job import Job, JobState

ORDER = ("fetch", "detect", "parse", "chunk", "embed")
WIDTH = 600.0  # viewBox units


KNOWN = frozenset({"queued", *ORDER, "commit"})
LABELS = {"queued": "waiting in the queue", "commit": "commit and finish"}


@dataclass(frozen=True)
class Segment:
    stage: str
    seconds: float
    x: float
    width: float
    share: float  # of the whole run, 0..1

    @property
    def key(self) -> str:
        """The CSS colour class: a stage this page does not know yet gets the "other" colour."""
        return self.stage if self.stage in KNOWN else "other"

    @property
    def label(self) -> str:
        return LABELS.get(self.stage, self.stage)


@dataclass(frozen=True)
class Timeline:
    job: Job
    segments: list[Segment]
    total: float
    result: dict[str, Any]

    @property
    def width(self) -> float:
        return WIDTH


def _stages(job: Job) -> dict[str, float]:
    result = job.result if isinstance(job.result, dict) else {}
    raw = result.get("stage_seconds")
    if not isinstance(raw, dict):
        return {}
    found = {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float) and v >= 0}
    ordered = {k: found[k] for k in ORDER if k in found}
    ordered.update({k: v for k, v in found.items() if k not in ordered})  # a stage added later
    return ordered


def stage_timeline(jobs: list[Job]) -> Timeline | None:
    """The newest finished run that reported its stages (the jobs come newest first)."""
    for job in jobs:
        if job.state is not JobState.SUCCEEDED or job.started_at is None or job.finished_at is None:
            continue
        stages = _stages(job)
        if not stages:
            continue
        parts: list[tuple[str, float]] = []
        waited = (job.started_at - job.created_at).total_seconds()
        if waited > 0:
            parts.append(("queued", waited))
        parts += list(stages.items())
        ran = (job.finished_at - job.started_at).total_seconds()
        # the commit is not timed by the attempt (it runs after it returns): the rest of the run is
        rest = ran - sum(stages.values())
        if rest > 0.0005:
            parts.append(("commit", rest))
        total = sum(s for _, s in parts)
        segments: list[Segment] = []
        x = 0.0
        for stage, seconds in parts:
            width = WIDTH * seconds / total if total else 0.0
            share = seconds / total if total else 0.0
            segments.append(Segment(stage, seconds, round(x, 2), round(width, 2), share))
            x += width
        result = job.result if isinstance(job.result, dict) else {}
        return Timeline(job, segments, total, result)
    return None
