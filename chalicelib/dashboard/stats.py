"""Statistics per task name over 1 h, 24 h or 7 d, and the queue-depth series, from DynamoDB buckets.

The buckets are written by the workers as attempts end (tasks/history.py: minute and hour
items, counters per task name) and, for queue depth, here: the first dashboard read of the
queues in a minute keeps that minute's depths (one conditional PutItem a minute at most,
whoever looks). So the charts survive a reload and a browser change. Reads per view: 1 h =
61 minute items x shards, 24 h = 25 hour items x shards, 7 d = 169 x shards, by BatchGetItem.
Deployed (`WORKER_METRICS=cloudwatch`) neither is read nor written here: the table and the
outcome chart come from the workers' EMF metrics (outcome_metrics.py) and the depth chart from
AWS/SQS (queue_metrics.py), each one GetMetricData call per view.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.dashboard import outcome_metrics, queue_metrics
from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.platform.errors import ValidationFailed
from chalicelib.platform.observability import logger
from chalicelib.tasks import history
from chalicelib.tasks.control import PREFIX

WINDOWS = {"1h": ("m", timedelta(hours=1)), "24h": ("h", timedelta(hours=24)), "7d": ("h", timedelta(days=7))}
DEPTH_MINUTES = 60


def task_stats(window: str | None) -> dict[str, Any]:
    """Per task name: processed, succeeded, failed, retried, revoked, runtime p50/p95/max (ms),
    and the outcome series of the window (one point per bucket)."""
    window = window or "1h"
    if window not in WINDOWS:
        raise ValidationFailed("invalid window", [{"field": "window", "message": f"one of {', '.join(WINDOWS)}"}])
    kind, span = WINDOWS[window]
    answer: dict[str, Any] = {"window": window, "bucket": "minute" if kind == "m" else "hour"}
    if get_settings().worker_metrics == "cloudwatch":  # deployed: the workers' EMF metrics
        try:
            tasks, points = outcome_metrics.task_metrics(kind, span)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("CloudWatch task metrics unavailable", extra={"error": str(exc)})
            return {
                **answer,
                "source": "cloudwatch",
                "tasks": {},
                "series": [],
                "reason": f"CloudWatch does not answer: {exc}",
            }
        return {**answer, "source": "cloudwatch", "tasks": tasks, "series": points}
    now = utcnow()
    buckets = history.read_buckets(history.bucket_ids(kind, now - span, now))
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    series: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for bucket in buckets:
        moment = str(bucket["id"]).split("#")[3]
        for key, value in bucket.items():
            if "|" not in key or not isinstance(value, float):
                continue
            name, counter = key.rsplit("|", 1)
            totals[name][counter] += value
            if counter in history.OUTCOMES:
                series[moment][counter] += value
    tasks = {name: _summary(counters) for name, counters in sorted(totals.items())}
    points = [{"t": t, **{o: int(series[t].get(o, 0)) for o in history.OUTCOMES}} for t in sorted(series)]
    return {**answer, "source": "dynamodb", "tasks": tasks, "series": points}


def _summary(counters: dict[str, float]) -> dict[str, Any]:
    histogram = [int(counters.get(f"h{i:02d}", 0)) for i in range(history.SLOTS)]
    processed = int(counters.get("processed", 0))
    return {
        "processed": processed,
        **{o: int(counters.get(o, 0)) for o in history.OUTCOMES},
        "runtime_p50_ms": _quantile(histogram, 0.5),
        "runtime_p95_ms": _quantile(histogram, 0.95),
        "runtime_max_ms": _quantile(histogram, 1.0),
        "runtime_mean_ms": round(counters.get("runtime_sum", 0) / processed, 1) if processed else None,
    }


def _quantile(histogram: list[int], q: float) -> float | None:
    """The upper bound of the histogram slot holding the q-quantile (within a factor of 1.41)."""
    total = sum(histogram)
    if not total:
        return None
    rank, seen = max(1.0, q * total), 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return round(history.slot_upper_ms(index), 1)
    return round(history.slot_upper_ms(len(histogram) - 1), 1)


def _depth_id(moment: datetime) -> str:
    return f"{PREFIX}depth#{moment.strftime('%Y-%m-%dT%H:%M')}"


def depth_source() -> str:
    """Where the depth chart's kept points come from: AWS/SQS deployed, the minute items locally."""
    return "cloudwatch" if get_settings().worker_metrics == "cloudwatch" else "dynamodb"


def keep_depths(queues: list[dict[str, Any]]) -> None:
    """The minute's queue depths, once (the first look of the minute writes; the rest are refused).
    Deployed, nothing: SQS publishes its own metrics every minute."""
    if depth_source() == "cloudwatch":
        return
    now = utcnow()
    depths = {q["queue"]: {"N": str(int(q["visible"] + q["in_flight"] + q["delayed"]))} for q in queues}
    item = {
        "id": {"S": _depth_id(now)},
        "depths": {"M": depths},
        "expires_at": {"N": str(int((now + timedelta(days=2)).timestamp()))},
    }
    dynamo = client("dynamodb")
    try:
        dynamo.put_item(TableName=get_settings().tasks_table, Item=item, ConditionExpression="attribute_not_exists(id)")
    except dynamo.exceptions.ConditionalCheckFailedException:
        pass  # another look kept this minute already
    except Exception as exc:  # noqa: BLE001 - a chart point is not worth failing the overview
        logger.warning("could not keep the queue depths", extra={"error": str(exc)})


def depth_series() -> list[dict[str, Any]]:
    """The queue depths kept over the last DEPTH_MINUTES minutes, oldest first."""
    if depth_source() == "cloudwatch":
        return queue_metrics.depth_series()
    now = utcnow()
    ids = [_depth_id(now - timedelta(minutes=m)) for m in range(DEPTH_MINUTES, -1, -1)]
    points = []
    for bucket in sorted(history.read_buckets(ids), key=lambda b: str(b["id"])):
        moment = str(bucket["id"]).split("#")[2]
        depths = bucket.get("depths") or {}
        points.append({"t": f"{moment}:00Z", "depths": {k: int(v) for k, v in depths.items()}})
    return points
