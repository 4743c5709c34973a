"""`@task(...)`: declare a function as a task that can send itself (Celery's `delay`/`apply_async`).

The one module that knows both the registry (definitions) and dispatch (sending), so that
neither imports the other: dispatch → registry, and this module → both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import DEFAULT_QUEUE, FailureHook, Task, check, register


def task(
    name: str,
    *,
    max_retries: int = 3,
    autoretry_for: tuple[type[BaseException], ...] = (Exception,),
    dont_autoretry_for: tuple[type[BaseException], ...] = (),
    retry_backoff: bool | float = True,
    retry_backoff_max: int | None = None,
    retry_jitter: bool = True,
    default_retry_delay: int = 180,
    time_limit: int | None = None,
    expires: int | None = None,
    on_failure: FailureHook | None = None,
    rate_limit: str | None = None,
    queue: str = DEFAULT_QUEUE,
    book_arg: bool = False,
) -> Callable[[Callable[..., Any]], Task]:
    """Register the decorated function as task `name` (options: see `Task`). Options that
    cannot work on Lambda and SQS are refused when the module is imported, before any
    function is given."""

    options = Task(
        name=name,
        func=_no_function,
        max_retries=max_retries,
        autoretry_for=tuple(autoretry_for),
        dont_autoretry_for=tuple(dont_autoretry_for),
        retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max,
        retry_jitter=retry_jitter,
        default_retry_delay=default_retry_delay,
        time_limit=time_limit,
        expires=expires,
        on_failure=on_failure,
        rate_limit=rate_limit,
        queue=queue,
        book_arg=book_arg,
        sender=dispatch,
    )
    check(options)

    def declare(func: Callable[..., Any]) -> Task:
        return register(replace(options, func=func))

    return declare


def _no_function(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("task options without a function")
