"""Declaring tasks: `@task(...)` registers a function once under a name."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.tasks.routes import queue_for

MAX_COUNTDOWN_SECONDS = 900  # SQS DelaySeconds limit


class UnknownTaskError(LookupError):
    """No task is registered under that name."""


@dataclass(frozen=True)
class Signature:
    """A task call waiting to be dispatched (Celery's signature)."""

    task: Task
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    countdown: int = 0

    def apply_async(self) -> str:
        """Dispatch this call; returns the task id."""
        from chalicelib.tasks.dispatch import dispatch

        return dispatch([self])[0]


@dataclass(frozen=True)
class Task:
    """A registered task and its retry policy."""

    name: str
    func: Callable[..., Any]
    max_retries: int
    permanent: tuple[type[BaseException], ...]

    @property
    def queue(self) -> str:
        """The routing key of this task's queue."""
        return queue_for(self.name)

    def s(self, *args: Any, task_id: str | None = None, countdown: int = 0, **kwargs: Any) -> Signature:
        """A signature of this task with these arguments."""
        if not 0 <= countdown <= MAX_COUNTDOWN_SECONDS:
            raise ValueError(f"countdown must be between 0 and {MAX_COUNTDOWN_SECONDS} seconds")
        return Signature(self, tuple(args), dict(kwargs), task_id or str(uuid.uuid4()), countdown)

    def delay(self, *args: Any, **kwargs: Any) -> str:
        """Dispatch now; returns the task id."""
        return self.s(*args, **kwargs).apply_async()

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        countdown: int = 0,
        task_id: str | None = None,
    ) -> str:
        """Dispatch with options, Celery style; returns the task id."""
        return self.s(*args, task_id=task_id, countdown=countdown, **(kwargs or {})).apply_async()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


_REGISTRY: dict[str, Task] = {}


def task(
    name: str, *, max_retries: int = 3, permanent: tuple[type[BaseException], ...] = ()
) -> Callable[[Callable[..., Any]], Task]:
    """Register the decorated function as task `name`."""

    def register(func: Callable[..., Any]) -> Task:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"task {name!r} is already registered")
        registered = Task(name=name, func=func, max_retries=max_retries, permanent=permanent)
        _REGISTRY[name] = registered
        return registered

    return register


def get_task(name: str) -> Task:
    """The task registered as `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}") from None


def registered_tasks() -> dict[str, Task]:
    """All registered tasks by name."""
    return dict(_REGISTRY)
