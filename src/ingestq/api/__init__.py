"""The HTTP service: `ingestq serve`, or a router an existing FastAPI application mounts.

    from fastapi import FastAPI
    from ingestq.api import IngestqClient, ingestq_lifespan, router

    app = FastAPI(lifespan=ingestq_lifespan())
    app.include_router(router, prefix="/ingestq")

    @app.post("/upload")
    async def upload(client: IngestqClient) -> dict[str, int]:
        job = await client.enqueue("app.tasks.resize", {"image": "a.png"})
        return {"job": job.id}

Every route is under `/v1`; errors share one JSON shape (`api/errors.py`); auth is closed by default
(`api/auth.py`).
"""

from __future__ import annotations

from ingestq.api.app import create_app, ingestq_lifespan, router
from ingestq.api.state import IngestqClient, IngestqRuntime, get_client, get_runtime

__all__ = [
    "IngestqClient",
    "IngestqRuntime",
    "create_app",
    "get_client",
    "get_runtime",
    "ingestq_lifespan",
    "router",
]
