"""How long the current invocation may still run (Lambda's `get_remaining_time_in_millis`).

The SQS consumer records the invocation's context here, so work that pages by time (the
mail fan-out) can ask without the context being threaded through every task signature.
Outside an invocation (eager mode, scripts) a fixed budget stands in.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NO_CONTEXT_BUDGET_MS = 30_000
_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


@contextmanager
def invocation(context: Any) -> Iterator[None]:
    """Make `context` the current invocation's for the duration of the block."""
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)


def remaining_ms() -> int:
    """Milliseconds left before the invocation is stopped."""
    context = _context.get()
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return int(getter()) if callable(getter) else NO_CONTEXT_BUDGET_MS


def active() -> bool:
    """True inside an invocation that recorded its context (a worker's)."""
    return _context.get() is not None
