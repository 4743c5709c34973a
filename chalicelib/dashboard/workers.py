"""The Workers panel: the local runtime's per-function counters, or CloudWatch's when deployed.

`settings.worker_metrics` chooses: "cloudwatch" (the deployed stages: ops/lambda_metrics.py reads
Lambda's metrics and the event source mappings) or "runtime" (the default: the counters of the
local runtime registered in this process, ops/local_runtime.py; `make run` registers its runner's). Both
answer the same fields; with neither, the panel says why it has nothing to show.
"""

from __future__ import annotations

from typing import Any

from chalicelib.ops import lambda_metrics, local_runtime
from chalicelib.platform.config import get_settings

TIMEOUT_SECONDS = 2.0
NO_RUNTIME = "no local runtime registered in this process (e.g. on AWS, where WORKER_METRICS=cloudwatch)"
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
    local = local_runtime.registered()
    if local is None:
        return {"available": False, "reason": NO_RUNTIME}
    try:
        counters = local.counters(TIMEOUT_SECONDS)
    except local_runtime.RuntimeUnavailable as exc:
        return {"available": False, "reason": str(exc)}
    return {
        "available": True,
        "source": "runtime",
        "functions": {
            name: {field: values.get(field) for field in FIELDS} for name, values in counters["functions"].items()
        },
        "updated_at": counters["updated_at"],
    }
