"""A status poll's reads by key on SQLite (store/sqlite/reader.py): they answer while the store's thread
is stuck behind a write, they see what was committed before them, and they never write."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from ingestq.errors import StoreError
from ingestq.model.document import Document, DocumentRef
from ingestq.model.job import Job, JobFilter, NewJob
from ingestq.store.sqlite.store import SqliteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def _store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    await store.migrate()
    return store


async def _until_the_thread_is_busy(store: SqliteStore) -> None:
    """Wait until the store's thread holds its connection (the queued write is running there)."""
    for _ in range(500):
        if store._d._holder.locked():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the write never reached the store's thread")


async def test_status_reads_answer_while_the_store_thread_waits_for_another_writer(tmp_path: Path) -> None:
    """Another process's connection holds the write lock, and this store's thread waits for it with a
    write (an upload). A status poll must not queue behind that write: before reader.py it waited
    out the whole lock (here until the test gave up)."""
    path = tmp_path / "q.db"
    store = await _store(path)
    holder = apsw.Connection(str(path))
    try:
        await store.document_register(DocumentRef("c", "doc-1", "/doc-1.md"), T0)
        [job] = await store.job_insert_many([NewJob(kind="k", document_id="doc-1")], T0)
        # first read loads sqlite-vec into the reader (on the thread, while it is free)
        assert (await store.document_get("c", "doc-1")) is not None

        holder.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.job_insert_many([NewJob(kind="k")], T0))
        await _until_the_thread_is_busy(store)

        async def poll() -> tuple[Job | None, list[Job], Document | None, int, Document | None]:
            return (
                await store.job_get(job.id),
                await store.job_list(JobFilter(document_id="doc-1", limit=50)),
                await store.document_get("c", "doc-1"),
                await store.document_token_count("c", "doc-1"),
                await store.document_by_content("c", "no-such-hash"),
            )

        got, listed, doc, tokens, by_hash = await asyncio.wait_for(poll(), timeout=3)
        assert not write.done()  # the poll did not wait for the write
        assert got is not None
        assert got.id == job.id
        assert [j.id for j in listed] == [job.id]
        assert doc is not None
        assert doc.id == "doc-1"
        assert tokens == 0
        assert by_hash is None
        holder.execute("COMMIT")
        assert len(await write) == 1
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        await store.close()


async def test_a_point_read_sees_what_another_connection_committed_just_before(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = await _store(path)
    other = await _store(path)
    try:
        [job] = await other.job_insert_many([NewJob(kind="k")], T0)
        seen = await store.job_get(job.id)
        assert seen is not None
        assert seen.id == job.id
        # and after a write on this store's own thread
        [mine] = await store.job_insert_many([NewJob(kind="k2")], T0)
        assert (await store.job_get(mine.id)) is not None
    finally:
        await other.close()
        await store.close()


async def test_the_point_reader_cannot_write(tmp_path: Path) -> None:
    store = await _store(tmp_path / "q.db")
    try:
        reader = store._reader
        assert reader is not None
        with pytest.raises((apsw.ReadOnlyError, StoreError)):
            reader.try_read(lambda e: e.conn.execute("DELETE FROM ingestq_jobs"))
    finally:
        await store.close()
