"""`ingestq serve`'s server freezes what its start-up allocated (gc.freeze): full collections then skip
the ~80,000 objects of the modules and the application, whose walk (18 ms with the event loop stopped)
set the p99 of an upload. Run in-process: the freeze is a property of the interpreter."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from ingestq.api.events.shutdown import StreamingServer


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class _Observed(StreamingServer):
    """Says when its start-up is over (uvicorn has no event for it)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config, app)
        self.up = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()


async def test_the_server_freezes_the_objects_of_its_start_up(unfrozen: None) -> None:
    app = FastAPI()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = _Observed(config, app)
    assert gc.get_freeze_count() == 0
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.up.wait(), 30)
        assert gc.get_freeze_count() > 10_000  # the modules imported by now, at least
    finally:
        server.should_exit = True
        await serving
