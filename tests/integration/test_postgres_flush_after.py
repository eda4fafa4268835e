"""The store's PostgreSQL sessions ask the kernel to write their pages back as they go
(`backend_flush_after=256kB`), unless the URL's own options say otherwise. Without it, the blobs of 200
uploads/s piled up as ~900 MB of dirty pages that the kernel wrote back in one burst, and every commit
waited behind it: the whole p99 of uploads on PostgreSQL (connect.py, FLUSH_OPTIONS)."""

from __future__ import annotations

from urllib.parse import quote

from ingestq.store.postgres.store import PostgresStore


async def _flush_after(url: str) -> str:
    store = PostgresStore(url, pool_max_size=1)
    await store.open()
    try:
        async with store._connection() as conn:
            row = await (await conn.execute("SHOW backend_flush_after")).fetchone()
            assert row is not None
            return str(row[0])
    finally:
        await store.close()


async def test_store_sessions_flush_their_writes_as_they_go(pg_url: str) -> None:
    assert await _flush_after(pg_url) == "256kB"


async def test_the_urls_own_setting_wins(pg_url: str) -> None:
    sep = "&" if "?" in pg_url else "?"
    assert await _flush_after(f"{pg_url}{sep}options={quote('-c backend_flush_after=0')}") == "0"
