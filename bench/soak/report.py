"""The "Soak" section of docs/reliability.md: one block per backend, rewritten by `--report` (under a
file lock: the SQLite and PostgreSQL soaks may run side by side and finish together)."""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "ingestq-soak-report.lock"
DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
SECTION = "## Soak"
INTRO = """\
A steady mixed load for an hour, no faults (`python -m bench.soak`; the fault soak, SIGKILL and SIGTERM
in turn, is `python -m bench.chaos soak`). One real `ingestq serve` (uvicorn) receives probe jobs
(`POST /v1/jobs`, 0.05 s each) and small real documents (`POST /v1/documents`, Markdown and HTML from
../shared/corpora, each made unique) at fixed rates; two real `ingestq worker` processes run them with
the local model. Succeeded jobs are kept 60 s (`INGESTQ_RETENTION_SUCCEEDED=60`; the cleaner runs
every 5 minutes), failed ones forever (so none goes unseen), embedding-cache entries 10 minutes
(`INGESTQ_EMBED_CACHE_RETENTION=600`), and documents are deleted again beyond the newest 100 indexed:
nothing the load asks to keep grows, so the database should stay flat. Every ~10 s:
resident memory (/proc) of the API and each worker (in brackets: the worker's parser processes),
database size, row counts, backlog. Memory slopes are least squares after a 5-minute warm-up; pickup is
`started_at - created_at` of every job.
"""


def block(backend: str, body: str) -> tuple[str, str, str]:
    start, end = f"<!-- soak:{backend}:start -->", f"<!-- soak:{backend}:end -->"
    return start, end, f"{start}\n{body.rstrip()}\n{end}"


def update(backend: str, body: str, doc: Path = DOC) -> None:
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = doc.read_text()
        if SECTION + "\n" not in text:
            marker = "\n## Running it\n"
            empty = [block(b, "(not run yet)")[2] for b in ("sqlite", "pg")]
            extra = f"{SECTION}\n\n{INTRO}\n" + "\n\n".join(empty) + "\n"
            text = text.replace(marker, f"\n{extra}{marker}", 1) if marker in text else text + "\n" + extra
        start, end, new = block(backend, body)
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        doc.write_text(head + new + tail)
