"""Periodic tasks → Chalice `@app.schedule` functions: one EventBridge schedule and function each.

Chalice finds a function by its module attribute (`app.<name>`), so `install` returns the
handlers by name for `app.py` to publish (`globals().update(...)`); from there `chalice deploy`
makes the EventBridge rules, `chalice package` the template's `Schedule` events, and the local
runner (`devtools/runtime/runner.py`) invokes them on the same expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, CloudWatchEvent

from chalicelib.tasks.periodic import PeriodicTask, registered_periodic, run


def _handler(periodic: PeriodicTask) -> Callable[[CloudWatchEvent], Any]:
    def handler(event: CloudWatchEvent) -> Any:
        return run(periodic, event.context)

    handler.__name__ = handler.__qualname__ = periodic.name
    handler.__doc__ = (periodic.func.__doc__ or "").strip() or f"The periodic task {periodic.name}."
    return handler


def install(app: Chalice) -> dict[str, Any]:
    """Register every periodic task as a scheduled function of `app`; their handlers by name."""
    handlers: dict[str, Any] = {}
    for name, periodic in sorted(registered_periodic().items()):
        handlers[name] = app.schedule(periodic.expression(), name=name)(_handler(periodic))
    return handlers
