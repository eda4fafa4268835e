"""The soak's arithmetic (`python -m bench.soak`): memory slopes after the warm-up, the pickup windows,
the checks, and the Soak section it writes into docs/reliability.md. The soak itself runs an hour; its
2-minute form takes longer than make test may spend, so it is not run here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.soak.analyse import Sample, analyse, every, p99, slope
from bench.soak.dbsize import DbSize
from bench.soak.load import Pickup, Tally
from bench.soak.report import update


def test_slope_is_least_squares_in_mb_per_hour() -> None:
    assert slope([(0.0, 100.0), (1800.0, 105.0), (3600.0, 110.0)]) == pytest.approx(10.0)
    # noise around a flat line: no slope
    assert slope([(t * 10.0, 100.0 + (1 if t % 2 else -1)) for t in range(361)]) == pytest.approx(0, abs=0.1)
    assert slope([(0.0, 1.0), (1.0, 2.0)]) is None  # too few points to say


def test_p99_is_the_nearest_rank() -> None:
    assert p99([1.0] * 99 + [9.0]) == 1.0
    assert p99([1.0] * 98 + [9.0, 9.0]) == 9.0
    assert p99([]) is None


def _samples(minutes: int, leak_mb_per_hour: float, db_growth: float = 0.0) -> list[Sample]:
    out = []
    for i in range(minutes * 6 + 1):
        t = i * 10.0
        warmup = 50.0 if t < 300 else 0.0  # the model loading: left out of the slope
        out.append(
            Sample(
                t=t,
                rss={"api": 80.0, "w0": 500.0 + t / 3600 * leak_mb_per_hour - warmup, "w1": 500.0},
                parsers={"w0": 30.0, "w1": 30.0},
                db=DbSize(total_mb=5.0 + (i % 30) / 10 + t / 3600 * db_growth, wal_mb=4.0),
                backlog=3,
                load1=2.0,
            )
        )
    return out


def _tally(jobs: int, docs: int) -> Tally:
    tally = Tally()
    tally.enqueued.update(probe=jobs, ingest=docs)
    tally.succeeded.update(probe=jobs, ingest=docs)
    tally.indexed = docs
    return tally


EXITS = {"api": -15, "w0": 0, "w1": 0}


def test_a_steady_hour_passes_every_check() -> None:
    pickups = [Pickup(t, 0.01 + (0.5 if t % 997 == 0 else 0), "probe") for t in range(3600)]
    fig = analyse(
        _samples(60, 2.0), pickups, _tally(100, 10), [], 3600, max_slope=20, max_growth=0.1, exits=EXITS
    )
    assert fig.slopes["w0"] == pytest.approx(2.0, abs=0.01)  # the warm-up jump is not counted
    assert fig.ok, fig.checks


def test_a_leak_growth_a_slowdown_and_a_lost_job_each_fail_their_check() -> None:
    pickups = [Pickup(t, 0.01 if t < 3000 else 0.05, "probe") for t in range(3600)]
    tally = _tally(100, 10)
    tally.succeeded["probe"] -= 1
    fig = analyse(
        _samples(60, 30.0, db_growth=12.0),
        pickups,
        tally,
        ["job 7 (probe): queued"],
        3600,
        max_slope=20,
        max_growth=0.1,
        exits={**EXITS, "w1": 1},
    )
    failed = {name.split(" (")[0] for name, ok in fig.checks.items() if ok is False}
    assert failed == {
        "nothing lost",
        "every process ran to the end and exited cleanly",
        "flat memory",
        "no database growth",
        "p99 pickup last/first ≤ 1.5",
    }


def test_a_short_run_does_not_judge_memory_or_growth() -> None:
    fig = analyse(
        _samples(2, 500.0, 500.0),
        [Pickup(t, 0.01, "probe") for t in range(120)],
        _tally(10, 1),
        [],
        120,
        max_slope=20,
        max_growth=0.1,
        exits=EXITS,
    )
    assert [name for name, ok in fig.checks.items() if ok is None] == [
        "flat memory (each slope < 20 MB/h)",
        "no database growth (late peak ≤ early peak × 1.1 + 1 MB)",
    ]
    assert fig.ok


def test_the_table_has_a_row_every_five_minutes() -> None:
    rows = every(_samples(60, 0.0), [Pickup(t, 0.02, "probe") for t in range(3600)], "sqlite")
    assert [r[0] for r in rows] == [str(m) for m in range(5, 65, 5)]
    assert rows[0][2] == "500 (+30) / 500 (+30)"
    assert rows[0][8] == "0.020"


def test_the_report_rewrites_only_its_backends_block(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\ntable\n\n## Running it\n\nmake chaos\n")
    update("pg", "pg figures", doc)
    update("sqlite", "sqlite one", doc)
    update("sqlite", "sqlite two", doc)
    text = doc.read_text()
    assert text.index("## Soak") < text.index("## Running it")
    assert "sqlite two" in text
    assert "sqlite one" not in text
    assert "pg figures" in text
    assert text.count("## Soak") == 1
