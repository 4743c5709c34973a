"""The Stats view from CloudWatch when deployed (`WORKER_METRICS=cloudwatch`): table and outcome chart.

The workers emit TaskSucceeded, TaskFailed, TaskRetried and TaskRevoked (Count) and
TaskDuration (Milliseconds, one per attempt that ran) as EMF metrics (namespace Bookshelf,
dimensions service, stage, task; tasks/executor.py), so CloudWatch holds the same counts as the
DynamoDB buckets, and exact runtime percentiles where the buckets only estimate them.
ONE GetMetricData request per view (paged by NextToken only when the answer is large), with
QUERIES_PER_TASK queries per registered task name: the four outcomes as Sum per minute (1 h)
or per hour (24 h, 7 d), which give both the chart and the table's totals, and TaskDuration's
p50, p95 and Maximum over the whole window (one datapoint each). At most MAX_QUERIES queries,
so 71 task names; 7 d is 71 x 4 x 169 + 213 = 48,209 datapoints at most, under the 100,800 limit.
Plain metric queries, no SEARCH expression: every emulator answers them, and the registered
task names are the ones that can have run.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import NAMESPACE
from chalicelib.tasks.history import OUTCOMES
from chalicelib.tasks.registry import registered_tasks

MAX_QUERIES = 500  # GetMetricData's limit per call
METRICS = {"succeeded": "TaskSucceeded", "failed": "TaskFailed", "retried": "TaskRetried", "revoked": "TaskRevoked"}
RUNTIMES = {"runtime_p50_ms": "p50", "runtime_p95_ms": "p95", "runtime_max_ms": "Maximum"}
QUERIES_PER_TASK = len(OUTCOMES) + len(RUNTIMES)
CACHE_SECONDS = 60.0  # the metrics' resolution is a minute; the Stats view polls every 10 s
_cache: dict[tuple[str, int], tuple[float, Any]] = {}
_lock = threading.Lock()


def task_names() -> list[str]:
    """The registered task names the view asks about (the first ones that fit in one call)."""
    return sorted(registered_tasks())[: MAX_QUERIES // QUERIES_PER_TASK]


def queries(names: list[str], period: int, span_seconds: int) -> list[dict[str, Any]]:
    """Ids `t<i>o<j>` (outcome j of task i, Sum per period) and `t<i>r<k>` (runtime k over the span)."""
    settings, found = get_settings(), []
    for i, name in enumerate(names):
        dimensions = [
            {"Name": "service", "Value": settings.app_name},
            {"Name": "stage", "Value": settings.stage},
            {"Name": "task", "Value": name},
        ]
        for j, outcome in enumerate(OUTCOMES):
            metric = {"Namespace": NAMESPACE, "MetricName": METRICS[outcome], "Dimensions": dimensions}
            found.append({"Id": f"t{i}o{j}", "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"}})
        duration = {"Namespace": NAMESPACE, "MetricName": "TaskDuration", "Dimensions": dimensions}
        for k, stat in enumerate(RUNTIMES.values()):
            found.append({"Id": f"t{i}r{k}", "MetricStat": {"Metric": duration, "Period": span_seconds, "Stat": stat}})
    return found


def task_metrics(kind: str, span: timedelta) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The table (per task name, as stats.py's DynamoDB summary) and the outcome points
    `{"t", succeeded, failed, retried, revoked}` per minute ("m") or hour ("h"), oldest first, with
    the moments written as the DynamoDB buckets' ids are (`2026-12-07T05:14`, `2026-12-07T05`).
    Kept CACHE_SECONDS per process and window. Raises botocore's errors: the caller says the
    source does not answer (and nothing is cached)."""
    key = (kind, int(span.total_seconds()))
    with _lock:
        kept = _cache.get(key)
        if kept and time.monotonic() - kept[0] < CACHE_SECONDS:
            return kept[1]  # type: ignore[no-any-return]
    answer = _read(kind, span)
    with _lock:
        _cache[key] = (time.monotonic(), answer)
    return answer


def _read(kind: str, span: timedelta) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    period, fmt = (60, "%Y-%m-%dT%H:%M") if kind == "m" else (3600, "%Y-%m-%dT%H")
    names = task_names()
    if not names:
        return {}, []
    span_seconds = int(span.total_seconds())
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    pages = (
        client("cloudwatch")
        .get_paginator("get_metric_data")
        .paginate(MetricDataQueries=queries(names, period, span_seconds), StartTime=end - span, EndTime=end)
    )
    points: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for page in pages:
        for result in page.get("MetricDataResults", []):
            pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            points[str(result.get("Id"))] += [(_moment(t), float(v)) for t, v in pairs]
    return _table(names, points), _series(names, points, fmt)


def _table(names: list[str], points: dict[str, list[tuple[datetime, float]]]) -> dict[str, dict[str, Any]]:
    """Per task name with any outcome in the window; a runtime is None without a datapoint."""
    table = {}
    for i, name in enumerate(names):
        counts = {o: int(sum(v for _, v in points.get(f"t{i}o{j}", []))) for j, o in enumerate(OUTCOMES)}
        if not any(counts.values()):
            continue
        runtimes: dict[str, float | None] = {}
        for k, key in enumerate(RUNTIMES):
            values = [v for _, v in points.get(f"t{i}r{k}", [])]
            # One datapoint for the window on AWS (periods start at StartTime); MiniStack aligns
            # periods to the epoch and may answer two: the larger (exact for the maximum, an
            # upper bound for the percentiles).
            runtimes[key] = round(max(values), 1) if values else None
        table[name] = {"processed": sum(counts.values()), **counts, **runtimes, "runtime_mean_ms": None}
    return table


def _series(names: list[str], points: dict[str, list[tuple[datetime, float]]], fmt: str) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for i in range(len(names)):
        for j, outcome in enumerate(OUTCOMES):
            for moment, value in points.get(f"t{i}o{j}", []):
                counts[moment.strftime(fmt)][outcome] += value
    return [{"t": t, **{o: int(counts[t].get(o, 0)) for o in OUTCOMES}} for t in sorted(counts)]


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(UTC)
