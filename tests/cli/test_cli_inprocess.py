"""Cheaper CLI checks through Typer's CliRunner (same command tree, same error wrapper, no process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingestq.cli.main import app
from ingestq.cli.render import to_json
from ingestq.model.job import JobState

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    return ["--db", f"sqlite:///{tmp_path / 'q.db'}"]


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr
    return result.stdout


def test_purge_by_state_and_queue(db: list[str]) -> None:
    jobs = json.loads(invoke(*db, "enqueue", "ingestq.probe", "--count", "3", "--queue", "a", "--json"))
    other = json.loads(invoke(*db, "enqueue", "ingestq.probe", "--queue", "b", "--json"))
    for job in [*jobs[:2], other]:
        invoke(*db, "jobs", "cancel", str(job["id"]))
    assert "purged 0" in invoke(*db, "jobs", "purge", "--state", "failed")
    assert "purged 0" in invoke(*db, "jobs", "purge", "--older-than", "3600")
    assert "purged 2" in invoke(*db, "jobs", "purge", "--queue", "a")
    assert "only finished jobs" in invoke(*db, "jobs", "purge", "--state", "queued", code=1)
    listed = json.loads(invoke(*db, "jobs", "list", "--json"))
    assert sorted(j["id"] for j in listed["jobs"]) == sorted([jobs[2]["id"], other["id"]])
    assert listed["next_before"] is None


def test_list_filters_and_pages(db: list[str]) -> None:
    assert invoke(*db, "jobs", "list").strip() == "no jobs"
    invoke(*db, "enqueue", "ingestq.probe", "--count", "5")
    invoke(*db, "enqueue", "other.kind", "--any-kind", "--queue", "x", "--priority", "3", "--delay", "60")
    probes = ("jobs", "list", "--kind", "ingestq.probe", "--json")
    page1 = json.loads(invoke(*db, *probes, "--limit", "3"))
    page2 = json.loads(invoke(*db, *probes, "--before", str(page1["next_before"])))
    ids = [j["id"] for j in page1["jobs"] + page2["jobs"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 5
    (delayed,) = json.loads(invoke(*db, "jobs", "list", "--queue", "x", "--json"))["jobs"]
    assert (delayed["priority"], delayed["state"]) == (3, "queued")
    assert delayed["run_at"] > delayed["created_at"]
    assert "other.kind" in invoke(*db, "jobs", "list", "--state", "queued")
    assert "'bogus' is not one of" in invoke(*db, "jobs", "list", "--state", "bogus", code=2)
    assert "--limit" in invoke(*db, "jobs", "list", "--limit", "0", code=2)


def test_queues_set_and_list(db: list[str]) -> None:
    assert "max depth 2" in invoke(*db, "queues", "set", "q", "--max-depth", "2")
    listed = [{"name": "q", "max_depth": 2, "paused_at": None, "paused": False}]
    assert json.loads(invoke(*db, "queues", "list", "--json")) == listed
    assert "unbounded" in invoke(*db, "queues", "set", "q", "--unbounded")
    assert "exactly one of" in invoke(*db, "queues", "set", "q", code=1)


def test_queues_pause_and_resume(db: list[str]) -> None:
    assert "paused since" in invoke(*db, "queues", "pause", "q")
    assert "max depth 3" in invoke(*db, "queues", "set", "q", "--max-depth", "3")
    (q,) = json.loads(invoke(*db, "queues", "list", "--json"))
    assert (q["name"], q["max_depth"], q["paused"]) == ("q", 3, True)
    assert q["paused_at"] is not None
    assert "paused since" in invoke(*db, "queues", "list")
    assert "resumed" in invoke(*db, "queues", "resume", "q")
    (q,) = json.loads(invoke(*db, "queues", "list", "--json"))
    assert (q["max_depth"], q["paused"], q["paused_at"]) == (3, False, None)
    assert "paused" not in invoke(*db, "queues", "list").split("\n", 1)[1]


def test_enqueue_rejects_conflicting_options(db: list[str]) -> None:
    message = invoke(*db, "enqueue", "ingestq.probe", "--count", "2", "--dedupe-key", "k", code=1)
    assert "--dedupe-key" in message
    first = json.loads(invoke(*db, "enqueue", "ingestq.probe", "--dedupe-key", "k", "--json"))
    again = json.loads(invoke(*db, "enqueue", "ingestq.probe", "--dedupe-key", "k", "--json"))
    assert first["id"] == again["id"]


def test_show_renders_a_table(db: list[str]) -> None:
    job = json.loads(invoke(*db, "enqueue", "ingestq.probe", "--payload", '{"seconds": 1}', "--json"))
    out = invoke(*db, "jobs", "show", str(job["id"]))
    assert "position" in out
    assert "ingestq.probe" in out


def test_to_json_turns_states_and_times_into_strings() -> None:
    assert to_json({JobState.QUEUED: 1}) == {"queued": 1}


def test_stats_shows_why_a_worker_is_unavailable(db: list[str]) -> None:
    import asyncio
    from datetime import UTC, datetime

    from ingestq.client.client import Client
    from ingestq.model.job import WorkerBeat
    from ingestq.settings import Settings

    reason = "parser process failed to start: ImportError: no lxml; repair the parser libraries"

    async def beat() -> None:
        async with Client.connect(Settings(database_url=db[1])) as client:
            now = datetime.now(UTC)
            await client.store.worker_heartbeat(WorkerBeat("w-ok", "h", 1, None, 4, (), 30.0), now)
            await client.store.worker_heartbeat(WorkerBeat("w-down", "h", 2, None, 4, (), 30.0, reason), now)

    asyncio.run(beat())
    shown = {w["worker_id"]: w["unavailable"] for w in json.loads(invoke(*db, "stats", "--json"))["workers"]}
    assert shown == {"w-ok": None, "w-down": reason}
    out = invoke(*db, "stats")
    assert "unavailable" in out
    assert "ImportError: no lxml" in " ".join(out.split())
