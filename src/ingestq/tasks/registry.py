"""The registry of job kinds a client can enqueue by name and a worker serves, and the `task` decorator.

A kind is registered once, with its options (queue, attempts, backoff, timeout, concurrency cap); the
worker claims only kinds present in its registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from ingestq.errors import UnknownJobKind
from ingestq.model.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, JsonDict
from ingestq.tasks.task import TaskSpec

if TYPE_CHECKING:  # imported on use: a worker without schedules never loads cron parsing
    from ingestq.tasks.periodic import Periodic

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Registry:
    """Job kind → TaskSpec. The worker claims only kinds present in its registry."""

    tasks: dict[str, TaskSpec[Any, Any]] = field(default_factory=dict)
    periodic_jobs: list[Periodic] = field(default_factory=list)

    def register(self, spec: TaskSpec[Any, Any]) -> None:
        existing = self.tasks.get(spec.kind)
        if existing is not None and existing.fn is not spec.fn:
            raise ValueError(f"job kind {spec.kind!r} is already registered to another function")
        self.tasks[spec.kind] = spec

    def get(self, kind: str) -> TaskSpec[Any, Any]:
        try:
            return self.tasks[kind]
        except KeyError:
            raise UnknownJobKind(kind) from None

    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self.tasks))

    def merge(self, other: Registry) -> Registry:
        merged = Registry(dict(self.tasks), [*self.periodic_jobs, *other.periodic_jobs])
        for spec in other.tasks.values():
            merged.register(spec)
        return merged

    def periodic(
        self, cron: str, task: TaskSpec[Any, Any] | str, payload: JsonDict | None = None, **options: Any
    ) -> Periodic:
        """Enqueue `task` on a cron schedule (UTC) from every worker that loads this registry; the store
        keeps it to one job per slot. Options: name, queue, priority, max_attempts, run_on_start."""
        from ingestq.tasks.periodic import Periodic

        job = Periodic(cron, task, dict(payload or {}), **options)
        self.periodic_jobs.append(job)
        return job

    @overload
    def task(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 1.0,
        backoff_max: float = 3600.0,
        timeout: float | None = None,
        concurrency: int | None = None,
    ) -> TaskSpec[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 1.0,
        backoff_max: float = 3600.0,
        timeout: float | None = None,
        concurrency: int | None = None,
    ) -> Callable[[Callable[P, R]], TaskSpec[P, R]]: ...

    def task(
        self,
        fn: Callable[P, R] | None = None,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 1.0,
        backoff_max: float = 3600.0,
        timeout: float | None = None,
        concurrency: int | None = None,
    ) -> TaskSpec[P, R] | Callable[[Callable[P, R]], TaskSpec[P, R]]:
        """Register `fn` as a job kind (`@registry.task` or `@registry.task(queue="q", ...)`).
        `concurrency` caps how many jobs of this kind one worker runs at once (default: no cap of its own).

        The kind defaults to `module.qualname`, so enqueueing by name works across processes."""

        if concurrency is not None and concurrency < 1:
            raise ValueError("a kind's concurrency must be at least 1")

        def decorate(f: Callable[P, R]) -> TaskSpec[P, R]:
            params = inspect.signature(f).parameters
            spec: TaskSpec[P, R] = TaskSpec(
                kind=name or f"{f.__module__}.{f.__qualname__}",
                fn=f,
                queue=queue,
                priority=priority,
                max_attempts=max_attempts,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                timeout=timeout,
                concurrency=concurrency,
                wants_ctx="ctx" in params,
                is_async=inspect.iscoroutinefunction(f),
            )
            self.register(spec)
            return spec

        return decorate(fn) if fn is not None else decorate


default_registry = Registry()
task = default_registry.task
"""Register a function in the default registry: `@ingestq.task(queue="emails", max_attempts=3)`."""
