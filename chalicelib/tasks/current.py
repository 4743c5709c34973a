"""Which task this thread is running, so a long task can ask whether it was revoked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("current_task_id", default=None)


def task_id() -> str | None:
    """The id of the task running in this context, or None outside a task."""
    return _CURRENT.get()


@contextmanager
def running(task_id: str) -> Iterator[None]:
    """Mark `task_id` as the running task for the duration of the block."""
    token = _CURRENT.set(task_id)
    try:
        yield
    finally:
        _CURRENT.reset(token)
