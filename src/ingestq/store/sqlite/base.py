"""SqliteBase: one SQLite file, the Engine on its connection and the thread that runs it. SqliteIndex (the
IndexStore half) and SqliteStore (the queue, with its wake-ups) build on it, one class on the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar, cast

import apsw

from ingestq.errors import StoreError
from ingestq.store.sqlite.connection import connect
from ingestq.store.sqlite.dispatch import Dispatch
from ingestq.store.sqlite.engine import Engine
from ingestq.store.sqlite.reader import PointReader

P = ParamSpec("P")
R = TypeVar("R")


class SqliteBase:
    def __init__(self, path: Path, busy_timeout_ms: int, synchronous: Literal["NORMAL", "FULL"]) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous: Literal["NORMAL", "FULL"] = synchronous
        self._dispatch: Dispatch | None = None
        self._engine: Engine | None = None
        self._reader: PointReader | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _connect(self) -> apsw.Connection:
        return connect(self.path, busy_timeout_ms=self._busy_timeout_ms, synchronous=self._synchronous)

    @property
    def _d(self) -> Dispatch:
        if self._dispatch is None:
            raise StoreError(f"{self!r} is not open: await store.open() first")
        return self._dispatch

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._d.run(fn, *args, **kwargs)

    async def _run_urgent(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._d.run_urgent(fn, *args, **kwargs)

    async def _point(self, call: Callable[[Engine], R]) -> R:
        """A bounded read by key, on the loop's thread when it can be (see reader.py)."""
        reader = self._reader
        if reader is not None:
            ran, result = reader.try_read(call)
            if ran:
                return cast(R, result)
        return await self._run(lambda: call(self._e))

    @property
    def _e(self) -> Engine:
        if self._engine is None:
            raise StoreError(f"{self!r} is not open: await store.open() first")
        return self._engine

    async def _open_engine(self) -> None:
        label = str(self.path)
        dispatch = self._dispatch = Dispatch(
            label, self._busy_timeout_ms, inline=self._synchronous == "NORMAL"
        )

        def open_engine() -> tuple[Engine, PointReader]:
            engine = Engine(self._connect(), label)
            dispatch.attach(engine.conn)
            try:
                return engine, PointReader(self._connect(), label)
            except BaseException:
                engine.close()
                raise

        try:
            self._engine, self._reader = await dispatch.run(open_engine)
        except BaseException:
            dispatch.shutdown_now()
            self._dispatch = None
            raise

    async def _close_engine(self) -> None:
        engine, self._engine = self._engine, None
        reader, self._reader = self._reader, None
        dispatch, self._dispatch = self._dispatch, None

        def finish() -> None:
            if reader is not None:
                reader.close()
            if engine is not None:
                engine.close()

        if dispatch is not None:
            await dispatch.close(finish)
