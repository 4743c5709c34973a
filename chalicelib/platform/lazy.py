"""Modules loaded at first use, so a function's init imports only what its own path needs.

Every Lambda function deploys the same `app.py`; importing each route's handlers there would
make the API pay for the workers, the dashboard and the OpenAPI document, and each worker for
every route. `app.py` names its handler modules through these proxies (with the real import
under `TYPE_CHECKING`, which keeps them typed and visible to tests/unit/test_import_graph.py).
The standard library's `importlib.util.LazyLoader` was the first choice, but it cannot load
`first` modules before the target (the task registry must be filled before a domain sends).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A stand-in that imports `target` (after `first`) on the first attribute read.

    Every read goes to the real module in `sys.modules`, so a test that patches the module
    is seen here too.
    """

    def __init__(self, target: str, first: tuple[str, ...] = ()) -> None:
        super().__init__(target)
        self._lazy_target = target
        self._lazy_first = first

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_lazy_"):
            raise AttributeError(attr)
        return getattr(load(self._lazy_target, self._lazy_first), attr)


def load(target: str, first: tuple[str, ...] = ()) -> ModuleType:
    """The module `target`, imported (after `first`) if it is not yet."""
    if target not in sys.modules:
        for name in first:
            importlib.import_module(name)
    # Always through the import system, never straight from sys.modules: a module another
    # thread is still importing is in sys.modules half-made (the local runner's two workers
    # read `worker.consume` at once: "partially initialized module"); import_module waits
    # for that import to finish, and costs a dictionary lookup once it has.
    return importlib.import_module(target)


def lazy(target: str, *first: str) -> Any:
    """A module proxy for `target`; `first` are imported before it (e.g. the task registry's filler)."""
    return LazyModule(target, first)


def deferred(target: str, name: str, *args: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that applies `target.name(*args)` (a decorator, or a factory of one when
    `args` are given) at the first call of the function, not when the function is defined."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        wrapped: list[Callable[..., Any]] = []

        @functools.wraps(func)
        def call(*call_args: Any, **kwargs: Any) -> Any:
            if not wrapped:
                decorator = getattr(load(target), name)
                wrapped.append((decorator(*args) if args else decorator)(func))
            return wrapped[0](*call_args, **kwargs)

        return call

    return decorate
