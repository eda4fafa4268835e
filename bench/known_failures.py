"""Corpus outcomes checked against tests/pipeline/known_failures.toml.

A corpus file either ingests, or fails with a reason that starts with the one listed for it (the list
also says why the failure is right). Anything else is unexpected: a regression, or a new corpus file
whose failure nobody has judged yet.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

KNOWN_FAILURES = Path(__file__).resolve().parents[1] / "tests" / "pipeline" / "known_failures.toml"


@dataclass(frozen=True)
class Known:
    reason: str
    why: str


@dataclass(frozen=True)
class Outcome:
    file: str
    """Path under the corpora folder, e.g. `docx/59378.docx`."""
    ok: bool
    reason: str


@dataclass
class Check:
    known: int = 0
    """Failures listed with a matching reason."""
    unexpected: list[Outcome] = field(default_factory=list)
    """Failures not listed, or listed with another reason."""
    now_ok: list[str] = field(default_factory=list)
    """Listed, but ingested this time (e.g. a timeout on a loaded machine that did not recur)."""


def load(path: Path = KNOWN_FAILURES) -> dict[str, Known]:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return {entry["file"]: Known(entry["reason"], entry.get("why", "")) for entry in data.get("failure", [])}


def check(outcomes: Iterable[Outcome], known: dict[str, Known]) -> Check:
    result = Check()
    for outcome in outcomes:
        listed = known.get(outcome.file)
        if outcome.ok:
            if listed is not None:
                result.now_ok.append(outcome.file)
        elif listed is not None and outcome.reason.startswith(listed.reason):
            result.known += 1
        else:
            result.unexpected.append(outcome)
    return result
