"""`POST /v1/jobs/bulk/purge` with `finished_before`: an exact dry-run count (the store's
`job_purge_count`, what the dashboard's "Purge old" shows), then a purge that deletes those jobs, on
SQLite and PostgreSQL through a real `ingestq serve`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from service import serving

from ingestq.client.client import Client
from ingestq.model.job import ClaimRequest, Outcome, OutcomeKind
from ingestq.settings import Settings

DAY = timedelta(days=1)


async def _finished(url: str, queue: str, outcome: OutcomeKind, when: datetime, n: int) -> list[int]:
    async with Client.connect(Settings(database_url=url)) as client:
        jobs = [client.new_job("ingestq.probe", {}, queue=queue, run_at=when) for _ in range(n)]
        await client.store.job_insert_many(jobs, when)
        claimed = await client.store.job_claim(ClaimRequest("t", n, 60.0, (queue,)), when)
        await client.store.job_finish_many(
            [Outcome(j.id, "t", j.attempt, outcome, error="e") for j in claimed], when
        )
        return [j.id for j in claimed]


def test_purge_by_age_counts_exactly_then_deletes_those(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = asyncio.run(_finished(database_url, "a", OutcomeKind.SUCCEEDED, now - 3 * DAY, 4))
    asyncio.run(_finished(database_url, "a", OutcomeKind.FAILED, now - 3 * DAY, 2))
    asyncio.run(_finished(database_url, "a", OutcomeKind.SUCCEEDED, now - DAY / 2, 3))
    asyncio.run(_finished(database_url, "b", OutcomeKind.SUCCEEDED, now - 3 * DAY, 5))
    cutoff = (now - 2 * DAY).isoformat()
    scope = {"filter": {"states": ["succeeded"], "queues": ["a"], "finished_before": cutoff}}
    with serving(database_url, tmp_path / "serve.log") as service, httpx.Client(base_url=service.url) as http:
        dry = http.post("/v1/jobs/bulk/purge", json={**scope, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json() == {
            "action": "purge",
            "dry_run": True,
            "matched": 4,
            "changed": None,
            "more": False,
        }
        done = http.post("/v1/jobs/bulk/purge", json=scope).json()
        assert (done["matched"], done["changed"]) == (4, 4)
        assert all(http.get(f"/v1/jobs/{i}").status_code == 404 for i in old)
        every = {"filter": {"finished_before": cutoff}, "dry_run": True}
        assert http.post("/v1/jobs/bulk/purge", json=every).json()["matched"] == 7  # failed in a, all of b
        naive = {"filter": {"finished_before": "2030-01-01T00:00:00"}, "dry_run": True}
        assert http.post("/v1/jobs/bulk/purge", json=naive).status_code == 422
        wrong = {"filter": {"finished_before": cutoff}, "dry_run": True}
        refused = http.post("/v1/jobs/bulk/retry", json=wrong)
        assert refused.status_code == 422
        assert "purge only" in refused.text
