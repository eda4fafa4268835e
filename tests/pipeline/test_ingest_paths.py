"""Path ingestion confined to `ingest_path_roots`: checked at registration and again by the worker, on
real files, with `..` and symlinks resolved before the check. A refused path fails at once, never retried."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import JobState
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.pipeline.sources import PathRefused, SourceError, check_path, expand_paths, read_file
from ingestq.settings import Settings
from ingestq.tasks.retry import ExponentialBackoff
from ingestq.worker import Worker, WorkerConfig


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """`allowed/` (one document, a symlink leading out, a subfolder) and `secret/` beside it."""
    allowed, secret = tmp_path / "allowed", tmp_path / "secret"
    allowed.mkdir()
    secret.mkdir()
    (allowed / "doc.md").write_text("# Allowed\n\nA document that may be ingested.\n")
    (secret / "key.md").write_text("# Secret\n\nNot for ingestion.\n")
    (allowed / "sub").mkdir()
    (allowed / "sub" / "escape.md").symlink_to(secret / "key.md")
    return allowed, secret


# --- the check itself ------------------------------------------------------------------------------


def test_unset_roots_change_nothing(tree: tuple[Path, Path]) -> None:
    _, secret = tree
    assert read_file(secret / "key.md", 1000).data.startswith(b"# Secret")
    assert check_path(secret / "key.md", None) == secret / "key.md"


def test_a_file_under_a_root_is_read(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    doc = read_file(allowed / "doc.md", 1000, roots=(str(allowed),))
    assert doc.data.startswith(b"# Allowed")
    assert doc.source == str(allowed / "doc.md")


@pytest.mark.parametrize(
    "relative", ["../secret/key.md", "sub/../../secret/key.md", "sub/escape.md", "../secret/missing.md"]
)
def test_escapes_are_refused_before_anything_is_read(tree: tuple[Path, Path], relative: str) -> None:
    allowed, _ = tree
    path = f"{allowed}/{relative}"
    with pytest.raises(PathRefused) as caught:
        read_file(path, 1000, roots=(str(allowed),))
    message = str(caught.value)
    assert message == f"{path}: outside the directories ingestion may read (INGESTQ_INGEST_PATH_ROOTS)"
    assert "key.md" not in message.replace(relative, "")  # the resolved target is not disclosed


def test_a_root_that_is_a_symlink_is_resolved_too(tree: tuple[Path, Path], tmp_path: Path) -> None:
    allowed, secret = tree
    (tmp_path / "link-to-allowed").symlink_to(allowed)
    assert read_file(allowed / "doc.md", 1000, roots=(str(tmp_path / "link-to-allowed"),)).data
    with pytest.raises(PathRefused):
        read_file(secret / "key.md", 1000, roots=(str(tmp_path / "link-to-allowed"),))


def test_empty_roots_refuse_every_path(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    with pytest.raises(PathRefused, match="path ingestion is disabled here"):
        read_file(allowed / "doc.md", 1000, roots=())


def test_a_refusal_is_permanent() -> None:
    assert issubclass(PathRefused, SourceError)  # SourceError is a PermanentError: no retry


def test_expand_paths_refuses_an_outside_directory_before_walking_it(tree: tuple[Path, Path]) -> None:
    allowed, secret = tree
    with pytest.raises(PathRefused):
        expand_paths([secret], roots=(str(allowed),))
    with pytest.raises(PathRefused):  # not "no such file": existence outside the roots is not disclosed
        expand_paths([secret / "nothing-here"], roots=(str(allowed),))


def test_expand_paths_refuses_a_symlink_that_leads_out_of_the_root(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    with pytest.raises(PathRefused, match=r"escape\.md"):
        expand_paths([allowed], roots=(str(allowed),))
    assert expand_paths([allowed], exclude=["escape.md"], roots=(str(allowed),)) == [allowed / "doc.md"]


# --- end to end: registration and the worker -------------------------------------------------------


def roots_settings(settings: Settings, roots: tuple[str, ...] | None) -> Settings:
    return settings.model_copy(
        update={"embedder": "fake", "embedder_dimension": 16, "ingest_path_roots": roots}
    )


async def test_registration_refuses_a_path_outside_the_roots(
    client: Client, settings: Settings, tree: tuple[Path, Path]
) -> None:
    allowed, secret = tree
    docs = Documents(client, roots_settings(settings, (str(allowed),)))
    with pytest.raises(PathRefused):
        await docs.ingest([allowed / "doc.md", secret / "key.md"])
    with pytest.raises(PathRefused):
        await docs.ingest([allowed])  # the symlink inside leads out
    assert await docs.list() == []  # nothing registered, nothing queued
    assert await client.list() == []
    ok = await docs.ingest([allowed / "doc.md"])
    assert [i.document.id for i in ok] == [str(allowed / "doc.md")]


async def test_the_worker_refuses_a_path_outside_its_roots(
    client: Client, settings: Settings, tree: tuple[Path, Path]
) -> None:
    # Registered by an unrestricted client (or before the roots were set): the worker checks again.
    allowed, secret = tree
    (queued,) = await Documents(client, roots_settings(settings, None)).ingest(
        [allowed / "sub" / "escape.md"]
    )
    confined = roots_settings(settings, (str(allowed),))
    async with IngestRuntime(client.store, confined) as runtime:
        worker = Worker(
            client.store,
            runtime.registry(),
            WorkerConfig(concurrency=2),
            retry_policy=ExponentialBackoff(base=0.01, max=0.05, jitter=0.0),
        )
        await asyncio.wait_for(worker.run(drain=True), 120)
    job = await client.get(queued.job.id)
    assert (job.state, job.attempt) == (JobState.FAILED, 1)  # permanent at once, no retry
    assert job.last_error is not None
    assert "outside the directories ingestion may read" in job.last_error
    assert "\n" not in job.last_error
    assert queued.document.source == str(secret / "key.md")  # the unrestricted client resolved the link
