"""One swappable implementation behind a seam: the deployed one, built on first use (never at
import: it may read settings), or the one a test configured (an in-memory store)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Seam(Generic[T]):
    """`current()` is the configured implementation, else the default `build()` made once."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._chosen: T | None = None
        self._lock = threading.Lock()

    def current(self) -> T:
        chosen = self._chosen
        if chosen is None:
            with self._lock:  # two first users at once build one default
                if self._chosen is None:
                    self._chosen = self._build()
                chosen = self._chosen
        return chosen

    def configure(self, value: T | None) -> None:
        """Use `value` from now on; None: back to the default, built again at its next use."""
        with self._lock:
            self._chosen = value
