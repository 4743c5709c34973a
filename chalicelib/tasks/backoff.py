"""Exponential backoff with full jitter, as AWS recommends for retries."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> int:
    """Seconds to wait before attempt `attempt + 1` (at least 1, at most `cap`)."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    jittered = (rng or random).uniform(ceiling / 2, ceiling)
    return max(1, min(round(jittered), int(cap)))
