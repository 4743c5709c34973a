"""Exponential backoff with full jitter, as Celery and the AWS Architecture Blog do it.

Full jitter draws the delay uniformly from [0, ceiling], so retries of many tasks that
failed together (a throttled mail sender) spread over the whole window instead of
bunching near its top, as "equal jitter" (ceiling/2 .. ceiling) would. Same formula as
celery.utils.time.get_exponential_backoff_interval, with a floor of one second so a
retried message never becomes visible again in the very instant it failed. Written here
because Celery (and its kombu/billiard dependencies) is not part of the Lambda package.
"""

from __future__ import annotations

import random

MIN_DELAY_SECONDS = 1


def backoff_ceiling(attempt: int, base: float, cap: float) -> int:
    """The largest delay after failed attempt `attempt` (1-based): base * 2^(attempt-1), capped."""
    return int(min(cap, base * (2 ** max(attempt - 1, 0))))


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None, jitter: bool = True) -> int:
    """Seconds to wait before attempt `attempt + 1`: uniform in [1, ceiling] with jitter, else the ceiling."""
    ceiling = backoff_ceiling(attempt, base, cap)
    delay = (rng or random).randrange(ceiling + 1) if jitter else ceiling
    return max(MIN_DELAY_SECONDS, min(delay, int(cap)))
