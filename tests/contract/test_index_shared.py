"""Collections, blobs, the embedding cache and shared rate buckets."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import BinaryIO, cast

import pytest
from contract_helpers import T0, StoreFactory
from index_helpers import index_of

from ingestq.model.document import BucketRow, DocumentRef
from ingestq.store import Store


async def test_collection_ensure_is_idempotent_and_keeps_the_first_model(store: Store) -> None:
    ix = await index_of(store)
    made = await ix.collection_ensure("c", "m1", 8, T0)
    assert (made.name, made.model_id, made.dimension, made.created_at) == ("c", "m1", 8, T0)
    again = await ix.collection_ensure("c", "m2", 16, T0 + timedelta(hours=1))
    assert again == made
    await ix.collection_ensure("a", "m1", 4, T0)
    assert [c.name for c in await ix.collection_list()] == ["a", "c"]
    assert await ix.collection_get("c") == made
    assert await ix.collection_get("nope") is None


async def test_blob_round_trip_and_dedup(store: Store) -> None:
    ix = await index_of(store)
    data = bytes(range(256)) * 100 + b"\x00end"
    blob_id = await ix.blob_put(data, T0)
    assert blob_id == hashlib.sha256(data).hexdigest()
    assert await ix.blob_put(data, T0 + timedelta(seconds=1)) == blob_id
    assert await ix.blob_get(blob_id) == data
    assert await ix.blob_get("0" * 64) is None
    assert await ix.blob_get(await ix.blob_put(b"", T0)) == b""


async def test_blob_put_file_streams_the_same_blob(store: Store) -> None:
    """A file bigger than a few read chunks (3.5 MiB of every byte value, backslashes and tabs included:
    COPY's text format on PostgreSQL) is stored under the id `blob_put` gives its bytes, read back the
    same; the same content again (file or bytes) is one blob; an empty file works."""
    ix = await index_of(store)
    data = (bytes(range(256)) * 4096) * 3 + b"\\\t\n\x00" * 1000 + b"tail"
    with tempfile.TemporaryFile() as file:
        file.write(data)
        blob_id = await ix.blob_put_file(file, T0)
        assert blob_id == hashlib.sha256(data).hexdigest()
        assert await ix.blob_get(blob_id) == data
        assert await ix.blob_put_file(file, T0 + timedelta(seconds=1)) == blob_id
    assert await ix.blob_put(data, T0) == blob_id
    with tempfile.TemporaryFile() as empty:
        assert await ix.blob_get(await ix.blob_put_file(empty, T0)) == b""
    small = b"written as bytes first"
    with tempfile.SpooledTemporaryFile(max_size=1024) as spooled:
        spooled.write(small)
        assert await ix.blob_put_file(cast(BinaryIO, spooled), T0) == await ix.blob_put(small, T0)
    assert await ix.blob_get(hashlib.sha256(small).hexdigest()) == small


async def test_embedding_cache_round_trip(store: Store) -> None:
    ix = await index_of(store)
    v1 = [0.5, -1.25, 3.0, 0.0]
    await ix.embed_cache_put("m1", {"k1": v1, "k2": [1.0, 2.0, 3.0, 4.0]}, T0)
    assert await ix.embed_cache_get("m1", ["k1", "missing"]) == {"k1": v1}
    assert await ix.embed_cache_get("m2", ["k1"]) == {}
    assert await ix.embed_cache_get("m1", []) == {}
    await ix.embed_cache_put("m1", {"k1": [9.0, 9.0, 9.0, 9.0]}, T0)
    got = await ix.embed_cache_get("m1", ["k1", "k2"])
    assert got == {"k1": [9.0, 9.0, 9.0, 9.0], "k2": [1.0, 2.0, 3.0, 4.0]}
    # float32: what comes back is the float32 rounding of what went in
    await ix.embed_cache_put("m1", {"k3": [0.1]}, T0)
    assert (await ix.embed_cache_get("m1", ["k3"]))["k3"] == [pytest.approx(0.1, rel=1e-6)]


async def test_blob_prune_deletes_the_bytes_no_document_names_past_the_cutoff(store: Store) -> None:
    ix = await index_of(store)
    named = await ix.blob_put(b"named", T0)
    replaced = await ix.blob_put(b"replaced", T0)
    deleted = await ix.blob_put(b"deleted", T0)
    fresh = await ix.blob_put(b"fresh", T0 + timedelta(hours=2))
    await ix.document_register(DocumentRef("c", "d1", "upload:a", replaced), T0)
    await ix.document_register(DocumentRef("c", "d1", "upload:a", named), T0)  # a new upload of d1
    await ix.document_register(DocumentRef("c", "d2", "upload:b", deleted), T0)
    assert await ix.document_delete("c", "d2")
    cutoff = T0 + timedelta(hours=1)
    assert await ix.blob_prune(cutoff, limit=1) == 1  # bounded batches
    assert await ix.blob_prune(cutoff, limit=1) == 1
    assert await ix.blob_prune(cutoff) == 0
    assert await ix.blob_get(replaced) is None
    assert await ix.blob_get(deleted) is None
    assert await ix.blob_get(named) == b"named"  # d1 names it
    assert await ix.blob_get(fresh) == b"fresh"  # younger than the cutoff: its document may be on its way
    # the same bytes put again refresh the age: an upload between put and register keeps its blob
    again = await ix.blob_put(b"again", T0)
    assert await ix.blob_put(b"again", T0 + timedelta(hours=2)) == again
    assert await ix.blob_prune(cutoff) == 0
    assert await ix.blob_get(again) == b"again"
    # and so does a streamed upload of bytes stored already (the API's path)
    streamed = await ix.blob_put(b"streamed", T0)
    assert await ix.blob_put_file(io.BytesIO(b"streamed"), T0 + timedelta(hours=2)) == streamed
    assert await ix.blob_prune(cutoff) == 0
    assert await ix.blob_get(streamed) == b"streamed"


async def test_embedding_cache_prune_deletes_entries_written_before_the_cutoff(store: Store) -> None:
    ix = await index_of(store)
    await ix.embed_cache_put("m1", {"old1": [1.0], "old2": [2.0]}, T0)
    await ix.embed_cache_put("m2", {"old3": [3.0]}, T0 + timedelta(minutes=1))
    await ix.embed_cache_put("m1", {"new": [4.0]}, T0 + timedelta(hours=2))
    cutoff = T0 + timedelta(hours=1)
    assert await ix.embed_cache_prune(cutoff, limit=2) == 2  # bounded batches
    assert await ix.embed_cache_prune(cutoff, limit=2) == 1
    assert await ix.embed_cache_prune(cutoff, limit=2) == 0
    assert await ix.embed_cache_get("m1", ["old1", "old2", "new"]) == {"new": [4.0]}
    assert await ix.embed_cache_get("m2", ["old3"]) == {}
    # a put refreshes the entry's age: written again after the cutoff, it stays
    await ix.embed_cache_put("m1", {"new": [5.0]}, T0 + timedelta(hours=3))
    assert await ix.embed_cache_prune(T0 + timedelta(hours=2, minutes=30)) == 0


async def test_rate_bucket_update_holds_under_concurrency(store: Store, more_stores: StoreFactory) -> None:
    ix = await index_of(store)
    others = [await index_of(await more_stores()) for _ in range(2)]
    start = 1000.0

    def take(n: float) -> Callable[[BucketRow | None], BucketRow]:
        def update(row: BucketRow | None) -> BucketRow:
            current = start if row is None else row.requests
            return BucketRow(requests=current - n, tokens=0.0, updated_at=T0)

        return update

    amounts = [float(i % 7 + 1) for i in range(60)]
    stores = [ix, *others]
    await asyncio.gather(
        *(stores[i % len(stores)].rate_bucket_update("api", take(n)) for i, n in enumerate(amounts))
    )
    final = await ix.rate_bucket_update("api", lambda row: row or BucketRow(0.0, 0.0, T0))
    assert final.requests == pytest.approx(start - sum(amounts))
    assert final.updated_at == T0
    other = await ix.rate_bucket_update("other", lambda row: BucketRow(5.0, 7.0, T0) if row is None else row)
    assert (other.requests, other.tokens) == (5.0, 7.0)


async def test_concurrent_collection_ensure_creates_one(store: Store, more_stores: StoreFactory) -> None:
    stores = [await index_of(store)] + [await index_of(await more_stores()) for _ in range(2)]
    made = await asyncio.gather(*(s.collection_ensure("race", f"m{i}", 4, T0) for i, s in enumerate(stores)))
    assert len({(c.model_id, c.dimension) for c in made}) == 1
    assert [c.name for c in await stores[0].collection_list()] == ["race"]
