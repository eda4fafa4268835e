"""What the HTTP service asks of the index store: a document by its content's sha256 within a collection,
and the answers kept for an Idempotency-Key (one per key until it expires; the first one kept wins)."""

from __future__ import annotations

import hashlib

from contract_helpers import T0, at
from index_helpers import DIM, MODEL, chunk, commit, index_of, write

from ingestq.model.document import DocumentFilter, DocumentRef, IdempotentReply
from ingestq.store import Store

V = [1.0, 0.0, 0.0, 0.0]


async def test_a_document_is_found_by_the_sha256_of_its_bytes_within_its_collection(store: Store) -> None:
    ix = await index_of(store)
    data = b"the same bytes"
    sha = hashlib.sha256(data).hexdigest()
    blob = await ix.blob_put(data, T0)
    assert blob == sha
    assert await ix.document_by_content("c", sha) is None
    await ix.document_register(DocumentRef("c", "b.md@1", "upload:b.md", blob), T0)
    await ix.document_register(DocumentRef("c", "a.md@1", "upload:a.md", blob), T0)
    found = await ix.document_by_content("c", sha)
    assert found is not None
    assert found.id == "a.md@1"  # the first by id
    assert await ix.document_by_content("other", sha) is None
    assert await ix.document_by_content("c", hashlib.sha256(b"else").hexdigest()) is None


async def test_a_path_or_url_document_is_found_by_its_served_version(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    await ix.document_register(DocumentRef("c", "/kb/a.md", "/kb/a.md"), T0)
    assert await ix.document_by_content("c", "sha-x") is None  # not indexed yet: its hash is unknown
    assert await commit(ix, write("/kb/a.md", chunk("/kb/a.md", 0, "alpha", V), content_hash="sha-x"))
    found = await ix.document_by_content("c", "sha-x")
    assert found is not None
    assert found.id == "/kb/a.md"


async def test_an_upload_replaced_by_new_bytes_is_not_found_by_its_old_ones(store: Store) -> None:
    ix = await index_of(store)
    await ix.collection_ensure("c", MODEL, DIM, T0)
    old = await ix.blob_put(b"old", T0)
    await ix.document_register(DocumentRef("c", "d", "upload:d", old), T0)
    assert await commit(ix, write("d", chunk("d", 0, "old", V), content_hash=old))
    new = await ix.blob_put(b"new", at(1))
    await ix.document_register(DocumentRef("c", "d", "upload:d", new), at(1))  # pending its new bytes
    assert await ix.document_by_content("c", old) is None
    found = await ix.document_by_content("c", new)
    assert found is not None
    assert found.id == "d"


def _reply(key: str, body: str, created: int, ttl: int = 60) -> IdempotentReply:
    return IdempotentReply(
        key, f"fp-{body}", 202, body, f"/v1/documents/c/{body}", at(created), at(created + ttl)
    )


async def test_an_idempotency_answer_is_kept_until_it_expires(store: Store) -> None:
    ix = await index_of(store)
    assert await ix.idempotency_get("POST /x k1", T0) is None
    first = _reply("POST /x k1", "first", 0)
    assert await ix.idempotency_put(first, T0) == first
    assert await ix.idempotency_get("POST /x k1", at(59)) == first
    assert await ix.idempotency_get("POST /x k2", at(1)) is None
    # a second answer under the same key while the first is kept: the first wins
    assert await ix.idempotency_put(_reply("POST /x k1", "second", 5), at(5)) == first
    assert await ix.idempotency_get("POST /x k1", at(60)) is None  # expired
    third = _reply("POST /x k1", "third", 61)
    assert await ix.idempotency_put(third, at(61)) == third
    assert await ix.idempotency_get("POST /x k1", at(62)) == third


async def test_expired_idempotency_answers_are_pruned_by_later_puts(store: Store) -> None:
    ix = await index_of(store)
    for n in range(5):
        await ix.idempotency_put(_reply(f"k{n}", f"b{n}", 0, ttl=10), T0)
    await ix.idempotency_put(_reply("later", "later", 20), at(20))
    # the expired answers are gone from the table, not only hidden: a get "before" their expiry misses them
    assert [await ix.idempotency_get(f"k{n}", at(1)) for n in range(5)] == [None] * 5
    assert await ix.idempotency_get("later", at(21)) is not None


async def test_pages_across_collections_keep_documents_that_share_an_id(store: Store) -> None:
    ix = await index_of(store)
    for collection in ("a", "b", "c"):
        for doc in ("d1", "d2"):
            await ix.document_register(DocumentRef(collection, doc, f"/{doc}"), T0)
    seen: list[tuple[str, str]] = []
    after: tuple[str, str] | None = None
    while True:
        flt = DocumentFilter(
            after_id=after[1] if after else None, limit=2, after_collection=after[0] if after else None
        )
        page = await ix.document_list(flt)
        seen += [(d.collection, d.id) for d in page]
        if len(page) < 2:
            break
        after = (page[-1].collection, page[-1].id)
    assert seen == [(c, d) for d in ("d1", "d2") for c in ("a", "b", "c")]
    # within a collection, after_id alone is the cursor, as before
    within = await ix.document_list(DocumentFilter(collection="b", after_id="d1"))
    assert [(d.collection, d.id) for d in within] == [("b", "d2")]
