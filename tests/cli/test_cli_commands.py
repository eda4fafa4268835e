"""The real `ingestq` console script, run as a subprocess: exit codes, output, settings resolution."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

INGESTQ = str(Path(sys.executable).with_name("ingestq"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    env.update(COLUMNS="200", **extra)
    return env


def ingestq(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [INGESTQ, *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def fails(*args: str, **kwargs: object) -> str:
    """Run a command that must fail; return its one error line."""
    proc = ingestq(*args, ok=False, **kwargs)  # type: ignore[arg-type]
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_round_trip_on_each_backend(database_url: str, tmp_path: Path) -> None:
    db = ("--db", database_url)
    probe = ("enqueue", "ingestq.probe")
    job = json.loads(ingestq(*db, *probe, "--payload", '{"seconds": 0}', "--queue", "cli", "--json").stdout)
    assert (job["kind"], job["queue"], job["state"], job["payload"]) == (
        "ingestq.probe",
        "cli",
        "queued",
        {"seconds": 0},
    )
    bulk = json.loads(ingestq(*db, *probe, "--count", "25", "--queue", "bulk", "--json").stdout)
    assert len(bulk) == 25
    shown = json.loads(ingestq(*db, "jobs", "show", str(job["id"]), "--json").stdout)
    assert (shown["id"], shown["position"]) == (job["id"], 1)
    listed = json.loads(ingestq(*db, "jobs", "list", "--queue", "bulk", "--limit", "10", "--json").stdout)
    assert len(listed["jobs"]) == 10
    assert listed["next_before"] == listed["jobs"][-1]["id"]
    stats = json.loads(ingestq(*db, "stats", "--json").stdout)
    depth = {q["queue"]: q["counts"]["queued"] for q in stats["queues"]}
    assert depth == {"cli": 1, "bulk": 25}
    assert "cancelled" in ingestq(*db, "jobs", "cancel", str(job["id"])).stdout
    assert "queued" in ingestq(*db, "jobs", "retry", str(job["id"])).stdout
    assert "is queued" in fails(*db, "jobs", "retry", str(job["id"]))
    assert fails(*db, "jobs", "show", "987654") == "error: job 987654 not found"


def test_default_database_is_under_the_working_directory(tmp_path: Path) -> None:
    out = ingestq("enqueue", "ingestq.probe", cwd=tmp_path).stdout
    assert out.startswith("job 1 queued")
    assert (tmp_path / ".ingestq" / "ingestq.db").is_file()
    status = json.loads(ingestq("db", "status", "--json", cwd=tmp_path).stdout)
    assert status["backend"] == "sqlite"
    assert status["up_to_date"] is True


def test_environment_url_is_honoured_and_the_flag_wins(tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    env = _env(INGESTQ_DATABASE_URL=f"sqlite:///{env_db}")
    ingestq("enqueue", "ingestq.probe", cwd=tmp_path, env=env)
    assert env_db.is_file()
    assert not (tmp_path / ".ingestq").exists()
    ingestq("--db", f"sqlite:///{flag_db}", "enqueue", "ingestq.probe", "--count", "2", cwd=tmp_path, env=env)
    env_stats = json.loads(ingestq("stats", "--json", cwd=tmp_path, env=env).stdout)
    assert [q["counts"]["queued"] for q in env_stats["queues"]] == [1]


def test_no_migrate_and_db_migrate(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'q.db'}")
    assert "ingestq db migrate" in fails(*db, "--no-migrate", "stats")
    assert "applied migration" in ingestq(*db, "db", "migrate").stdout
    assert "up to date" in ingestq(*db, "db", "migrate").stdout
    ingestq(*db, "--no-migrate", "stats")


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'q.db'}")
    assert "unsupported database URL" in fails("--db", "mysql://x/y", "stats")
    assert "unknown job kind 'no.such.kind'" in fails(*db, "enqueue", "no.such.kind")
    assert "not valid JSON" in fails(*db, "enqueue", "ingestq.probe", "--payload", "{nope")
    assert "must be a JSON object" in fails(*db, "enqueue", "ingestq.probe", "--payload", "[1, 2]")
    assert "cannot import" in fails(*db, "enqueue", "x", "--app", "no_such_module_here")
    ingestq(*db, "queues", "set", "tiny", "--max-depth", "1")
    ingestq(*db, "enqueue", "ingestq.probe", "--queue", "tiny")
    assert "queue 'tiny' is full" in fails(*db, "enqueue", "ingestq.probe", "--queue", "tiny")
    assert "invalid setting" in fails(*db, "stats", env=_env(INGESTQ_CONCURRENCY="many"))
    assert "No such option: --bogus" in fails("--bogus", "stats")
    assert "Missing argument" in fails(*db, "jobs", "show")


def test_a_misspelt_setting_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    # Both entry paths: Typer's (stats) and the worker's fast path, which builds Settings without Typer.
    db = ("--db", f"sqlite:///{tmp_path / 'q.db'}")
    env = _env(INGESTQ_CONCURENCY="4")
    expected = "error: unknown setting INGESTQ_CONCURENCY (did you mean INGESTQ_CONCURRENCY?)"
    assert fails(*db, "stats", env=env) == expected
    assert fails(*db, "worker", "--once", env=env) == expected
    assert fails(*db, "worker", "--once", "--concurrency", "2", env=env) == expected


def test_reserved_test_variables_do_not_stop_the_cli(tmp_path: Path) -> None:
    env = _env(INGESTQ_TEST_PG_URL="postgresql://postgres@127.0.0.1:1/unused")
    ingestq("--db", f"sqlite:///{tmp_path / 'q.db'}", "stats", env=env)


def test_any_kind_and_app_registry(tmp_path: Path) -> None:
    (tmp_path / "myapp_tasks.py").write_text(
        "import ingestq\n\n@ingestq.task(queue='mail')\ndef send(to: str) -> None:\n    pass\n"
    )
    db = ("--db", f"sqlite:///{tmp_path / 'q.db'}")
    job = json.loads(ingestq(*db, "enqueue", "remote.kind", "--any-kind", "--json").stdout)
    assert job["kind"] == "remote.kind"
    mine = json.loads(
        ingestq(*db, "enqueue", "myapp_tasks.send", "--app", "myapp_tasks", "--json", cwd=tmp_path).stdout
    )
    assert mine["queue"] == "mail"


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are not the pages you are looking for\n" * 200)
    message = fails("--db", f"sqlite:///{bogus}", "stats")
    assert "not a SQLite database" in message or "not a database" in message


def test_schema_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    ingestq("--db", f"sqlite:///{path}", "db", "migrate")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO ingestq_migrations (version, name, applied_at) VALUES (999, 'future', '')")
    conn.close()
    assert "schema" in fails("--db", f"sqlite:///{path}", "stats").lower()


def test_unreachable_postgres() -> None:
    # Port 1 on localhost refuses connections at once: no waiting for a timeout.
    message = fails("--db", "postgresql://nobody@127.0.0.1:1/nothing", "stats")
    assert "127.0.0.1" in message or "connect" in message.lower()


@pytest.mark.parametrize("args", [["--help"], ["jobs", "--help"], ["--version"]])
def test_help_and_version(args: list[str]) -> None:
    assert ingestq(*args).stdout.strip()
