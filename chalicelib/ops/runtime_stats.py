"""The local runner's per-function counters, for `GET /queues` under `make run`.

Only the local runtime serves them (`settings.runtime_stats_url`); on AWS the same figures
are CloudWatch's Invocations, Errors, Throttles and Duration metrics, so this returns None.
The standard library's urllib, not requests: requests is not part of the deployed package.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import logger

TIMEOUT_SECONDS = 1.0  # the listing must answer even when the runner is down or restarting


def runtime_by_queue() -> dict[str, dict[str, Any]] | None:
    """Counters of the function consuming each queue, by queue name; None when no local runner is configured."""
    url = get_settings().runtime_stats_url
    if not url:
        return None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            functions = json.loads(response.read()).get("functions", {})
    except (OSError, ValueError) as exc:
        logger.warning("local runtime counters unavailable", extra={"url": url, "error": str(exc)})
        return {}
    return {
        stats["queue"]: {"function": name, **stats}
        for name, stats in functions.items()
        if isinstance(stats, dict) and stats.get("queue")
    }


def runtime_of(queue_name: str, by_queue: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The `runtime` entry of one queue in `GET /queues` ({} when there is no local runner)."""
    if by_queue is None:
        return {}
    return {"runtime": by_queue.get(queue_name)}
