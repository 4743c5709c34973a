"""The Stats chart's outcome series from CloudWatch when deployed (`WORKER_METRICS=cloudwatch`).

The workers emit TaskSucceeded, TaskFailed, TaskRetried and TaskRevoked as EMF metrics
(namespace Bookshelf, dimensions service, stage, task; tasks/executor.py), so CloudWatch holds
the same counts as the DynamoDB buckets. One GetMetricData call: a query per registered task
name and outcome (Sum per minute or hour), at most MAX_QUERIES, summed per moment here.
Plain metric queries, no SEARCH expression: every emulator answers them, and the registered
task names are the ones that can have run.
"""

from __future__ import annotations

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


def outcome_series(kind: str, span: timedelta) -> list[dict[str, Any]]:
    """Points `{"t", succeeded, failed, retried, revoked}` per minute ("m") or hour ("h"), oldest first,
    with the moments written as the DynamoDB buckets' ids are (`2026-12-07T05:14`, `2026-12-07T05`)."""
    settings = get_settings()
    period, fmt = (60, "%Y-%m-%dT%H:%M") if kind == "m" else (3600, "%Y-%m-%dT%H")
    names = sorted(registered_tasks())[: MAX_QUERIES // len(OUTCOMES)]
    queries, outcome_of = [], {}
    for i, name in enumerate(names):
        for j, outcome in enumerate(OUTCOMES):
            query_id = f"t{i}o{j}"
            outcome_of[query_id] = outcome
            dimensions = [
                {"Name": "service", "Value": settings.app_name},
                {"Name": "stage", "Value": settings.stage},
                {"Name": "task", "Value": name},
            ]
            metric = {"Namespace": NAMESPACE, "MetricName": METRICS[outcome], "Dimensions": dimensions}
            queries.append({"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"}})
    if not queries:
        return []
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    answer = client("cloudwatch").get_metric_data(MetricDataQueries=queries, StartTime=end - span, EndTime=end)
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for result in answer.get("MetricDataResults", []):
        kind_of = outcome_of.get(str(result.get("Id")))
        for moment, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
            if kind_of:
                counts[_moment(moment).strftime(fmt)][kind_of] += float(value)
    return [{"t": t, **{o: int(counts[t].get(o, 0)) for o in OUTCOMES}} for t in sorted(counts)]


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(UTC)
