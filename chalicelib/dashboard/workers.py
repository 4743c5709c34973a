"""The Workers panel: the local runtime's per-function counters, or CloudWatch's when deployed.

`settings.worker_metrics` chooses: "runtime" (`make run` exports RUNTIME_STATS_URL, the local
runner's `/stats`) or "cloudwatch" (the deployed stages: ops/lambda_metrics.py reads Lambda's
metrics and the event source mappings). Both answer the same fields.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chalicelib.ops import lambda_metrics
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


def worker_stats() -> dict[str, Any]:
    """The panel's answer from the configured source."""
    if get_settings().worker_metrics == "cloudwatch":
        return lambda_metrics.worker_stats()
    return runtime_stats()


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
        "source": "runtime",
        "functions": {
            str(name): {field: values.get(field) for field in FIELDS}
            for name, values in functions.items()
            if isinstance(values, dict)
        },
        "updated_at": data.get("updated_at"),
    }
