"""The Workers panel when deployed: Lambda's own numbers from CloudWatch and the event source mappings.

Per function, over the last `worker_metrics_minutes`: Invocations, Errors, Throttles (Sum),
Duration p50/p95 (extended statistics), ConcurrentExecutions (Maximum of the latest minute:
"in use"), and the app's own EMF metric ColdStart (namespace Bookshelf, dimensions service,
stage, function; observability.py emits it on a worker's first invocation in a process). The
maximum is the mapping's ScalingConfig.MaximumConcurrency, and `paused` its State. All of it
is ONE GetMetricData call (every query batched, at most MAX_QUERIES) plus one
ListEventSourceMappings per queue, kept CACHE_SECONDS per process so a few open tabs cost the
same as one. Lambda has no metric of timeouts nor of warm sandboxes: those stay None, and
`notes` says why, so the page shows "not exposed" rather than a made-up zero.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import NAMESPACE, logger
from chalicelib.platform.sqs import queue_arn
from chalicelib.tasks.periodic import registered_periodic

CACHE_SECONDS = 60.0  # Lambda's metrics have one-minute resolution: nothing newer comes sooner
MAX_QUERIES = 500  # GetMetricData's own limit per call
NOTES = {
    "timeouts": "not a CloudWatch metric: a timeout counts as an error (Errors); its log line is 'Task timed out'",
    "warm_sandboxes": "not exposed by AWS (Lambda does not publish how many execution environments are warm)",
    "cold_starts": "the app's EMF metric ColdStart (first invocation of a worker process)",
    "in_use": "ConcurrentExecutions, maximum of the latest minute with data",
}
# (query id prefix, namespace, metric, statistic); the app's namespace is the EMF one.
_LAMBDA = (
    ("inv", "AWS/Lambda", "Invocations", "Sum"),
    ("err", "AWS/Lambda", "Errors", "Sum"),
    ("thr", "AWS/Lambda", "Throttles", "Sum"),
    ("p50", "AWS/Lambda", "Duration", "p50"),
    ("p95", "AWS/Lambda", "Duration", "p95"),
)


class Function(TypedDict):
    """One deployed function the panel shows, and what its event source mapping says."""

    name: str
    queue: str | None
    batch_size: int | None
    max_concurrency: int | None
    paused: bool | None
    worker: bool


_cache: dict[str, Any] = {}
_lock = threading.Lock()


def worker_stats() -> dict[str, Any]:
    """The Workers panel's answer from CloudWatch (cached CACHE_SECONDS); never raises for AWS errors."""
    with _lock:
        if _cache and time.monotonic() - _cache["at"] < CACHE_SECONDS:
            return dict(_cache["answer"])
    try:
        answer = _read()
    except (ClientError, BotoCoreError) as exc:
        logger.warning("CloudWatch worker metrics unavailable", extra={"error": str(exc)})
        return {"available": False, "source": "cloudwatch", "reason": f"CloudWatch does not answer: {exc}"}
    with _lock:
        _cache.update(at=time.monotonic(), answer=answer)
    return dict(answer)


def functions() -> list[Function]:
    """The workers (from each queue's event source mappings) and the scheduled functions."""
    settings, lam = get_settings(), client("lambda")
    found: list[Function] = []
    for queue in settings.queues.values():
        pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=queue_arn(queue.name))
        for mapping in (m for page in pages for m in page.get("EventSourceMappings", [])):
            scaling = mapping.get("ScalingConfig") or {}
            found.append(
                {
                    "name": function_of(str(mapping.get("FunctionArn", ""))),
                    "queue": queue.name,
                    "batch_size": mapping.get("BatchSize"),
                    "max_concurrency": scaling.get("MaximumConcurrency"),
                    "paused": mapping.get("State") in ("Disabled", "Disabling"),
                    "worker": True,
                }
            )
    prefix = f"{settings.app_name}-{settings.stage}"
    for name in sorted(registered_periodic()):
        found.append(
            {
                "name": f"{prefix}-{name}",
                "queue": None,
                "batch_size": None,
                "max_concurrency": 1,
                "paused": None,
                "worker": False,
            }
        )
    return found


def function_of(arn: str) -> str:
    """The function name in a (possibly qualified) function ARN."""
    return arn.split(":function:", 1)[-1].split(":", 1)[0]


def queries(found: list[Function], window_seconds: int) -> list[dict[str, Any]]:
    """The GetMetricData queries of every function (ids `<kind><index>`), at most MAX_QUERIES."""
    settings, result = get_settings(), []
    for index, function in enumerate(found):
        by_name = [{"Name": "FunctionName", "Value": function["name"]}]
        for kind, namespace, metric, stat in _LAMBDA:
            result.append(_query(f"{kind}{index}", namespace, metric, by_name, window_seconds, stat))
        result.append(_query(f"use{index}", "AWS/Lambda", "ConcurrentExecutions", by_name, 60, "Maximum"))
        if function["worker"]:
            emf = [
                {"Name": "service", "Value": settings.app_name},
                {"Name": "stage", "Value": settings.stage},
                {"Name": "function", "Value": function["name"]},
            ]
            result.append(_query(f"cold{index}", NAMESPACE, "ColdStart", emf, window_seconds, "Sum"))
    return result[:MAX_QUERIES]


def _query(
    query_id: str, namespace: str, metric: str, dimensions: list[dict[str, str]], period: int, stat: str
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _read() -> dict[str, Any]:
    settings = get_settings()
    window = timedelta(minutes=settings.worker_metrics_minutes)
    found = functions()
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    answer = client("cloudwatch").get_metric_data(
        MetricDataQueries=queries(found, int(window.total_seconds())),
        StartTime=end - window,
        EndTime=end,
        ScanBy="TimestampDescending",
    )
    series = {r["Id"]: _points(r) for r in answer.get("MetricDataResults", [])}
    return {
        "available": True,
        "source": "cloudwatch",
        "window_minutes": settings.worker_metrics_minutes,
        "functions": {f["name"]: _function(i, f, series) for i, f in enumerate(found)},
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "notes": NOTES,
    }


def _points(result: dict[str, Any]) -> list[tuple[datetime, float]]:
    """A result's points, newest first (whatever order the service answered in)."""
    pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
    return sorted(((_moment(t), float(v)) for t, v in pairs), key=lambda p: p[0], reverse=True)


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _function(index: int, function: Function, series: dict[str, list[tuple[datetime, float]]]) -> dict[str, Any]:
    def total(kind: str) -> int | None:
        points = series.get(f"{kind}{index}")
        return int(sum(v for _, v in points)) if points else None  # no datapoint: no data, not 0

    def latest(kind: str) -> float | None:
        points = series.get(f"{kind}{index}")
        return round(points[0][1], 2) if points else None

    in_use = latest("use")
    return {
        "queue": function["queue"],
        "batch_size": function["batch_size"],
        "max_concurrency": function["max_concurrency"],
        "paused": function["paused"],
        "timeout_seconds": None,
        "memory_mb": None,
        "invocations": total("inv"),
        "errors": total("err"),
        "timeouts": None,
        "throttles": total("thr"),
        "cold_starts": total("cold") if function["worker"] else None,
        "in_use": None if in_use is None else int(in_use),
        "p50_ms": latest("p50"),
        "p95_ms": latest("p95"),
        "warm_sandboxes": None,
    }
