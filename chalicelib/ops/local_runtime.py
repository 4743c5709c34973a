"""The local runtime's seam: the counters of each function, when the app runs beside a local runner.

Lambda keeps no such counters for the app to read (deployed, the Workers panel reads CloudWatch:
ops/lambda_metrics.py), so the deployed code defines only what it needs and ships no source of
them. A local runtime registers its own at start with `use()` (under `make run`, the API process
registers the runner's `/stats`: devtools/local_api.py); with none registered, `GET /queues` has
no `runtime` entries and the Workers panel says "not available".
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

from chalicelib.platform.observability import logger

QUEUES_TIMEOUT_SECONDS = 1.0  # the listing must answer even when the runner is down or restarting


class RuntimeCounters(TypedDict):
    """Counters by function name: queue, batch_size, max_concurrency, timeout_seconds, memory_mb,
    invocations, errors, timeouts, throttles, cold_starts, in_use, p50_ms, p95_ms, warm_sandboxes
    (a scheduled function's queue is None)."""

    functions: dict[str, dict[str, Any]]
    updated_at: str | None


class RuntimeUnavailable(Exception):
    """The runtime did not answer with its counters; the message says why."""


class LocalRuntime(Protocol):
    """What a local runtime tells about the functions it runs."""

    def counters(self, timeout_seconds: float) -> RuntimeCounters:
        """The counters now; RuntimeUnavailable when they cannot be read within `timeout_seconds`."""
        ...


_registered: LocalRuntime | None = None


def use(runtime: LocalRuntime | None) -> LocalRuntime | None:
    """Register the local runtime this process serves beside (None: none); returns the one before."""
    global _registered
    previous, _registered = _registered, runtime
    return previous


def registered() -> LocalRuntime | None:
    """The registered local runtime, None when the app runs without one (on AWS)."""
    return _registered


def by_queue() -> dict[str, dict[str, Any]] | None:
    """Counters of the function consuming each queue, by queue name ({} while the runtime does not
    answer); None when no local runtime is registered."""
    runtime = _registered
    if runtime is None:
        return None
    try:
        functions = runtime.counters(QUEUES_TIMEOUT_SECONDS)["functions"]
    except RuntimeUnavailable as exc:
        logger.warning("local runtime counters unavailable", extra={"error": str(exc)})
        return {}
    return {stats["queue"]: {"function": name, **stats} for name, stats in functions.items() if stats.get("queue")}


def runtime_of(queue_name: str, counters: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The `runtime` entry of one queue in `GET /queues` ({} when no local runtime is registered)."""
    if counters is None:
        return {}
    return {"runtime": counters.get(queue_name)}
