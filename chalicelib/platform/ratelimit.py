"""A rate shared by every concurrent invocation: a generic cell rate algorithm (GCRA) in DynamoDB.

One item per limit holds the theoretical arrival time (`tat`) of the next free slot. Taking n
units takes the slot [max(tat, now), +n/rate) with one conditional write on the old value;
whoever loses the race reads the new value and tries again. However many workers run, the
slots never exceed the rate over any stretch longer than one slot. Powertools has no
distributed rate limiter, and Lambda's concurrency caps cannot express "n per second", hence
this small module; the SES send rate (`mail/ratelimit.py`) and the tasks' `rate_limit`
(`tasks/throttle.py`) are its two users, each with its own item.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from typing import Protocol

MAX_ATTEMPTS = 25
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*$")


class RateContended(Exception):
    """The schedule moved under every one of MAX_ATTEMPTS writes (an extreme burst)."""


class SlotStore(Protocol):
    """Where one limit's `tat` lives (epoch seconds)."""

    key: str

    def read(self) -> float | None:
        """The stored `tat` (strongly consistent), 0.0 when unset, None when there is no item."""
        ...

    def swap(self, old: float | None, new: float) -> bool:
        """Write `new` if the stored value is still `old` (None: no item yet); False otherwise."""
        ...


def parse_rate(text: str) -> float:
    """Units per second of a Celery rate string: "100/m", "10/s", "1000/h", or "5" (per second)."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"rate {text!r} is not a number per s, m or h, like '100/m'")
    rate = float(match.group(1)) / _UNITS[match.group(2) or "s"]
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate {text!r} must be more than 0")
    return rate


_known: dict[str, float] = {}  # the last `tat` this container wrote, per limit: usually one write, no read


def reserve(
    store: SlotStore,
    count: float,
    rate: float,
    latest_start: float = math.inf,
    clock: Callable[[], float] = time.time,
) -> tuple[bool, float]:
    """Reserve `count` units at `rate` per second, starting by `latest_start` (epoch seconds).

    Returns (True, start) when reserved, or (False, earliest start) when the next free slot
    begins too late (nothing is reserved then). With no `latest_start` it always reserves,
    however far ahead the slot is.
    """
    interval = count / rate
    known: float | None = _known.get(store.key)
    for _ in range(MAX_ATTEMPTS):
        current = store.read() if known is None else known
        start = max(current or 0.0, clock())
        if start > latest_start:
            return False, start
        if store.swap(current, start + interval):
            _known[store.key] = start + interval
            return True, start
        known = None  # another worker moved the schedule: read it
        time.sleep(random.uniform(0.002, 0.02))
    raise RateContended(f"the rate schedule {store.key} is contended")


def wait_until(start: float) -> None:
    """Sleep until a reserved slot begins."""
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
