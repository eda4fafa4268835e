"""`SyncClient`: the async `Client` for code without an event loop (scripts, WSGI apps, notebooks).

There is one implementation: each method here is a typed bridge generated from the `Client` coroutine of
the same name (`_bridge(Client.enqueue)`), so signatures and docs cannot drift. Calls run on a private
event loop in a daemon thread, so a SyncClient also works inside code that already runs a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar, overload

from ingestq.client.client import Client, TaskOrKind
from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.model.job import Job, JsonDict
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry

P = ParamSpec("P")
R = TypeVar("R")


class _Loop:
    """An event loop running forever in a daemon thread; `run` blocks the caller until a coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ingestq-sync", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _bridge(Generic[P, R]):
    """Descriptor: `SyncClient.x` is `Client.x` run to completion on the SyncClient's loop."""

    def __init__(self, method: Callable[Concatenate[Client, P], Coroutine[Any, Any, R]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__
        self.__name__ = method.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: SyncClient, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: SyncClient | None, owner: type[Any]) -> Self | Callable[P, R]:
        if obj is None:
            return self
        method = self._method
        client = obj.client
        run = obj._loop.run

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(method(client, *args, **kwargs))

        call.__name__ = method.__name__
        call.__doc__ = method.__doc__
        return call


class _plain(Generic[P, R]):
    """Descriptor for the few `Client` methods that do no I/O: call them directly, no loop needed."""

    def __init__(self, method: Callable[Concatenate[Client, P], R]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: SyncClient, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: SyncClient | None, owner: type[Any]) -> Self | Callable[P, R]:
        if obj is None:
            return self
        method, client = self._method, obj.client

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return method(client, *args, **kwargs)

        return call


class SyncClient:
    """Blocking twin of `Client`: `with SyncClient.connect(settings) as client: client.enqueue(...)`."""

    def __init__(self, client: Client, loop: _Loop) -> None:
        self.client = client
        self._loop = loop

    @classmethod
    def connect(
        cls,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock = SYSTEM_CLOCK,
        check_schema: bool = True,
    ) -> SyncClient:
        loop = _Loop()
        try:
            client = loop.run(Client._open(settings or Settings(), registry, clock, check_schema))
        except BaseException:
            loop.stop()
            raise
        return cls(client, loop)

    def close(self) -> None:
        try:
            self._loop.run(self.client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    new_job = _plain(Client.new_job)
    migrate = _bridge(Client.migrate)
    schema_version = _bridge(Client.schema_version)
    enqueue = _bridge(Client.enqueue)

    # Written out, not bridged: its overloads (jobs, or ids with return_jobs=False) would collapse to the
    # first one through `_bridge`'s ParamSpec. tests/unit/test_client_sync.py compares the signatures.
    @overload
    def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: Literal[True] = True,
    ) -> list[Job]: ...

    @overload
    def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: Literal[False],
    ) -> list[int]: ...

    def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: bool = True,
    ) -> list[Job] | list[int]:
        c = self.client
        if return_jobs:
            return self._loop.run(
                c.enqueue_many(
                    task_or_kind,
                    payloads,
                    queue=queue,
                    priority=priority,
                    delay=delay,
                    run_at=run_at,
                    max_attempts=max_attempts,
                )
            )
        return self._loop.run(
            c.enqueue_many(
                task_or_kind,
                payloads,
                queue=queue,
                priority=priority,
                delay=delay,
                run_at=run_at,
                max_attempts=max_attempts,
                return_jobs=False,
            )
        )

    enqueue_many.__doc__ = Client.enqueue_many.__doc__
    insert_many = _bridge(Client.insert_many)
    get = _bridge(Client.get)
    list = _bridge(Client.list)
    position = _bridge(Client.position)
    stats = _bridge(Client.stats)
    workers = _bridge(Client.workers)
    queues = _bridge(Client.queues)
    cancel = _bridge(Client.cancel)
    retry = _bridge(Client.retry)
    purge = _bridge(Client.purge)
    configure_queue = _bridge(Client.configure_queue)
    pause_queue = _bridge(Client.pause_queue)
    resume_queue = _bridge(Client.resume_queue)
