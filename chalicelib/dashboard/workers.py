"""The Workers panel: the local runtime's per-function counters, where a runtime serves them.

`make run` exports RUNTIME_STATS_URL (the local runner's `/stats`); on AWS it is unset
and the panel says so: Lambda's own numbers live in CloudWatch (docs/DEPLOY.md).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chalicelib.platform.config import get_settings

TIMEOUT_SECONDS = 2
MAX_BYTES = 256 * 1024
FIELDS = (
    "queue",
    "batch_size",
    "max_concurrency",
    "timeout_seconds",
    "memory_mb",
    "invocations",
    "errors",
    "timeouts",
    "throttles",
    "cold_starts",
    "in_use",
    "p50_ms",
    "p95_ms",
    "warm_sandboxes",
)


def runtime_stats() -> dict[str, Any]:
    """`{"available": true, "functions": {...}, "updated_at"}` or `{"available": false, "reason"}`."""
    url = get_settings().runtime_stats_url
    if not url:
        return {"available": False, "reason": "no local runtime (RUNTIME_STATS_URL is unset, e.g. on AWS)"}
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # stdlib: requests is not deployed
            data = json.loads(answer.read(MAX_BYTES))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"available": False, "reason": f"the local runtime does not answer: {exc}"}
    functions = data.get("functions") if isinstance(data, dict) else None
    if not isinstance(functions, dict):
        return {"available": False, "reason": "the local runtime answered something else than its counters"}
    return {
        "available": True,
        "functions": {
            str(name): {field: values.get(field) for field in FIELDS}
            for name, values in functions.items()
            if isinstance(values, dict)
        },
        "updated_at": data.get("updated_at"),
    }
