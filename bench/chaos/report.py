"""The table in docs/reliability.md: one row per (scenario, backend), rewritten by `--report`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.chaos.scenarios import Result

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
START, END = "<!-- chaos-table:start -->", "<!-- chaos-table:end -->"
HEADER = [
    "| scenario | backend | jobs | faults injected | lost | run twice (finished / same attempt / at once) "
    "| attempts burned (uncounted re-runs) | recovery | throughput vs undisturbed | checks | command |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def row(res: Result, command: str) -> str:
    fig = res.figures
    assert fig is not None
    ratio = (
        f"{fig.throughput:.0f}/s vs {res.baseline:.0f}/s = **{res.ratio * 100:.0f}%**"
        if res.ratio is not None and res.baseline
        else f"{fig.throughput:.0f}/s (no baseline)"
    )
    failed = [name for name, ok in res.checks.items() if not ok]
    checks = "all pass" if not failed else "FAIL: " + "; ".join(failed)
    cells = [
        res.scenario,
        res.backend,
        str(res.jobs),
        res.faults.replace("|", "/"),
        str(fig.lost) + (f" ({fig.missing} missing, {fig.unfinished} still unfinished)" if fig.lost else ""),
        f"{fig.finished_twice} / {fig.same_attempt_twice} / {fig.concurrent}",
        f"{fig.attempts_burned} ({fig.uncounted_reruns})",
        res.recovery,
        ratio,
        checks,
        f"`{command}` ({dt.date.today().isoformat()})",
    ]
    return "| " + " | ".join(cells) + " |"


def _ordered(rows: list[str]) -> list[str]:
    """In the order of SCENARIOS, SQLite before PostgreSQL."""
    from bench.chaos.scenarios import SCENARIOS

    names = list(SCENARIOS)

    def key(r: str) -> tuple[int, str]:
        cells = [c.strip() for c in r.strip("|").split("|")]
        return (
            names.index(cells[0]) if cells[0] in names else len(names),
            "0" if cells[1] == "sqlite" else cells[1],
        )

    return sorted(rows, key=key)


def reorder() -> None:
    """Put the table's rows in order (after editing the page by hand)."""
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    body, _, tail = rest.partition(END)
    rows = [r for r in body.strip().splitlines() if r.startswith("| ") and r not in HEADER]
    DOC.write_text(f"{head}{START}\n" + "\n".join([*HEADER, *_ordered(rows)]) + f"\n{END}{tail}")


def update_table(res: Result, command: str) -> None:
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    body, _, tail = rest.partition(END)
    rows = [r for r in body.strip().splitlines() if r.startswith("| ") and r not in HEADER]
    key = f"| {res.scenario} | {res.backend} |"
    new = row(res, command)
    rows = [new if r.startswith(key) else r for r in rows]
    if new not in rows:
        rows.append(new)
    table = "\n".join([*HEADER, *_ordered(rows)])
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")
